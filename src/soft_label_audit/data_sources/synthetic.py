"""The synthetic ambiguous variant: digits between two classes, made in an autoencoder's latent space.

A small convolutional autoencoder is trained on MNIST training images. An ambiguous item is
``decode((1 - w) * encode(x_a) + w * encode(x_b))`` for an image ``x_a`` of class ``a`` and
``x_b`` of class ``b``; its machine soft label puts mass ``1 - w`` on ``a`` and ``w`` on ``b``.
Everything is seeded, and the bytes do not depend on the machine: the autoencoder trains and
decodes in float64 on one intra-op thread (so neither the thread count nor the CPU's vector
kernels change more than the last bits of a float64, far below the uint8 rounding), and the
decoded images are rounded to uint8 before anything depends on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


class DigitAutoencoder(nn.Module):
    """28x28 -> ``latent_dim`` -> 28x28; strided convolutions, sigmoid output in [0, 1]."""

    def __init__(self, latent_dim: int = 16, width: int = 16):
        super().__init__()
        self.latent_dim = latent_dim
        self.width = width
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1),  # 14x14
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # 7x7
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 49, latent_dim),
        )
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim, 2 * width * 49), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # 14x14
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # 28x28
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_fc(z).view(-1, 2 * self.width, 7, 7)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@dataclass(frozen=True)
class AutoencoderConfig:
    latent_dim: int = 16
    width: int = 16
    n_train_images: int = 10_000
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 2e-3
    seed: int = 0


DTYPE = torch.float64


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(images, np.float64) / 255.0).unsqueeze(1)


@contextmanager
def machine_independent() -> Iterator[None]:
    """One intra-op thread and deterministic kernels while the generator runs, restored after.

    A reduction split over a different number of threads adds in a different order; in float64
    that moves only the last bits, which the uint8 rounding of the images absorbs.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def train_autoencoder(
    images: np.ndarray, config: AutoencoderConfig, progress: bool = False
) -> tuple[DigitAutoencoder, list[float]]:
    """Train on ``config.n_train_images`` images drawn (seeded) from ``images`` (n, 28, 28) uint8.

    Loss: binary cross-entropy per pixel. Returns the model (eval mode) and the mean loss of
    each epoch.
    """
    rng = np.random.default_rng(config.seed)
    n = min(config.n_train_images, len(images))
    pick = rng.choice(len(images), size=n, replace=False)
    x = _to_tensor(images[pick])
    torch.manual_seed(config.seed)
    model = DigitAutoencoder(config.latent_dim, config.width).to(DTYPE)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.BCELoss()
    epochs = range(config.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="autoencoder", unit="epoch")
    with machine_independent():
        losses = _train_epochs(model, optimiser, loss_fn, x, epochs, rng, config)
    model.eval()
    return model, losses


def _train_epochs(model, optimiser, loss_fn, x, epochs, rng, config) -> list[float]:
    n = len(x)
    losses = []
    for _ in epochs:
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for start in range(0, n, config.batch_size):
            batch = x[order[start : start + config.batch_size]]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch), batch)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / n)
    return losses


@dataclass(frozen=True)
class AmbiguityConfig:
    n_items: int = 1000
    class_pairs: tuple[tuple[int, int], ...] = (
        (4, 9),
        (3, 5),
        (3, 8),
        (5, 8),
        (1, 7),
        (2, 7),
        (0, 6),
        (5, 6),
    )
    min_weight: float = 0.3
    max_weight: float = 0.7
    seed: int = 1


def generate_ambiguous(
    model: DigitAutoencoder,
    images: np.ndarray,
    labels: np.ndarray,
    config: AmbiguityConfig,
) -> dict[str, np.ndarray]:
    """Interpolate between digits of two classes.

    For each item a class pair (a, b) is drawn uniformly from ``config.class_pairs`` (order
    shuffled), one source image of each class is drawn from ``images``, and the weight
    ``w ~ U(min_weight, max_weight)`` of class b. The machine soft label is
    ``(1 - w) e_a + w e_b``; the item's original label is its argmax (a when ``w == 0.5``).

    Returns images (n, 28, 28) uint8, machine_soft_label (n, 10), class_a, class_b,
    mix_weight, original_label and the ids of the two source images (index into ``images``).
    Source images are drawn with replacement, so one parent can feed several items (the study
    split keeps such items together, see :func:`soft_label_audit.data_sources.study.parent_groups`).
    """
    if not 0.0 <= config.min_weight <= config.max_weight <= 1.0:
        raise ValueError("need 0 <= min_weight <= max_weight <= 1")
    pairs = np.asarray(config.class_pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or (pairs[:, 0] == pairs[:, 1]).any():
        raise ValueError(
            f"class_pairs must be pairs of two different digits, got {config.class_pairs}"
        )
    rng = np.random.default_rng(config.seed)
    n = config.n_items
    chosen = pairs[rng.integers(0, len(pairs), size=n)]
    swap = rng.random(n) < 0.5
    class_a = np.where(swap, chosen[:, 1], chosen[:, 0])
    class_b = np.where(swap, chosen[:, 0], chosen[:, 1])
    weight = rng.uniform(config.min_weight, config.max_weight, size=n)
    by_class = {k: np.flatnonzero(labels == k) for k in range(10)}
    for k in np.unique(pairs):
        if len(by_class[int(k)]) == 0:
            raise ValueError(f"no source image of class {k} to interpolate from")
    src_a = np.array([rng.choice(by_class[int(k)]) for k in class_a])
    src_b = np.array([rng.choice(by_class[int(k)]) for k in class_b])
    model = model.to(DTYPE)
    with torch.no_grad(), machine_independent():
        z_a = model.encode(_to_tensor(images[src_a]))
        z_b = model.encode(_to_tensor(images[src_b]))
        w = torch.from_numpy(weight.astype(np.float64)).unsqueeze(1)
        decoded = model.decode((1 - w) * z_a + w * z_b).squeeze(1).numpy()
    out_images = np.clip(np.rint(decoded * 255.0), 0, 255).astype(np.uint8)
    soft = np.zeros((n, 10))
    soft[np.arange(n), class_a] += 1 - weight
    soft[np.arange(n), class_b] += weight
    original = np.where(weight > 0.5, class_b, class_a)
    return {
        "images": out_images,
        "machine_soft_label": soft,
        "class_a": class_a,
        "class_b": class_b,
        "mix_weight": weight,
        "original_label": original,
        "source_a": src_a,
        "source_b": src_b,
    }
