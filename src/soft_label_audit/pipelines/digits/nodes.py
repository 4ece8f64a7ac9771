"""Nodes of the `digits` pipeline: thin adapters over ``soft_label_audit.data_sources``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from soft_label_audit.data_sources import study, synthetic  # noqa: E402
from soft_label_audit.data_sources.tables import images_to_column  # noqa: E402

MNIST_TEST_OFFSET = 60_000


def build_mnist_table(mnist_raw: dict[str, np.ndarray]) -> pd.DataFrame:
    """All 70,000 MNIST items in the 70k ordering: training images 0..59999, then test images."""
    images = np.concatenate([mnist_raw["train_images"], mnist_raw["test_images"]])
    labels = np.concatenate([mnist_raw["train_labels"], mnist_raw["test_labels"]]).astype(np.int64)
    n = len(images)
    return pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "source": "mnist",
            "original_label": labels,
            "image": images_to_column(images),
            "machine_soft_label": [None] * n,
            "class_a": np.full(n, -1, np.int64),
            "class_b": np.full(n, -1, np.int64),
            "mix_weight": np.full(n, np.nan),
            "parent_a": np.full(n, -1, np.int64),
            "parent_b": np.full(n, -1, np.int64),
        }
    )


def train_digit_autoencoder(
    mnist_raw: dict[str, np.ndarray], params: dict[str, Any]
) -> dict[str, Any]:
    """Train the generator's autoencoder on MNIST training images; returns a picklable bundle."""
    config = synthetic.AutoencoderConfig(**params)
    model, losses = synthetic.train_autoencoder(mnist_raw["train_images"], config, progress=True)
    return {
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
        "epoch_losses": losses,
    }


def _restore(bundle: dict[str, Any]) -> synthetic.DigitAutoencoder:
    config = bundle["config"]
    model = synthetic.DigitAutoencoder(config["latent_dim"], config["width"]).to(synthetic.DTYPE)
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(v)) for k, v in bundle["state_dict"].items()}
    )
    return model.eval()


def make_synthetic_digits(
    digit_autoencoder: dict[str, Any], mnist_raw: dict[str, np.ndarray], params: dict[str, Any]
) -> pd.DataFrame:
    """Ambiguous digits between two classes, ``source = "synthetic"``, ids from ``first_item_id``."""
    config = synthetic.AmbiguityConfig(
        n_items=int(params["n_items"]),
        class_pairs=tuple(tuple(int(c) for c in pair) for pair in params["class_pairs"]),
        min_weight=float(params["min_weight"]),
        max_weight=float(params["max_weight"]),
        seed=int(params["seed"]),
    )
    made = synthetic.generate_ambiguous(
        _restore(digit_autoencoder), mnist_raw["train_images"], mnist_raw["train_labels"], config
    )
    n = config.n_items
    return pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64) + int(params["first_item_id"]),
            "source": "synthetic",
            "original_label": made["original_label"].astype(np.int64),
            "image": images_to_column(made["images"]),
            "machine_soft_label": [row.tolist() for row in made["machine_soft_label"]],
            "class_a": made["class_a"].astype(np.int64),
            "class_b": made["class_b"].astype(np.int64),
            "mix_weight": made["mix_weight"],
            # item ids of the two MNIST training images it was interpolated from
            "parent_a": made["source_a"].astype(np.int64),
            "parent_b": made["source_b"].astype(np.int64),
        }
    )


def combine_digits(mnist_digits: pd.DataFrame, synthetic_digits: pd.DataFrame) -> pd.DataFrame:
    """The `digits` table: MNIST then synthetic items; item ids must not collide."""
    overlap = np.intersect1d(mnist_digits["item_id"], synthetic_digits["item_id"])
    if len(overlap):
        raise ValueError(
            f"synthetic item ids collide with MNIST ids {overlap[:5].tolist()} ({len(overlap)} in all): "
            "raise digits.synthetic.first_item_id"
        )
    return pd.concat([mnist_digits, synthetic_digits], ignore_index=True)


def choose_study_items(digits: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The items chosen for re-annotation with their train/val/test split (see data_sources.study)."""
    pools = {
        s: (tuple(b) if b is not None else None) for s, b in params.get("pool_item_ids", {}).items()
    }
    return study.select_study_items(
        digits,
        n_per_source={s: int(n) for s, n in params["n_per_source"].items()},
        pool_ids=pools,
        split_fractions={k: float(v) for k, v in params["split_fractions"].items()},
        seed=int(params["seed"]),
    )


def plot_synthetic_samples(synthetic_digits: pd.DataFrame, params: dict[str, Any]) -> plt.Figure:
    """A grid of generated items titled with their machine soft labels (the two non-zero classes)."""
    from soft_label_audit.data_sources.tables import images_from_column

    rows, cols = int(params["rows"]), int(params["cols"])
    sample = synthetic_digits.head(rows * cols)
    images = images_from_column(sample["image"])
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.45 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, (_, item) in zip(axes.flat, images, sample.iterrows()):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        w = float(item["mix_weight"])
        ax.set_title(f"{item['class_a']}:{1 - w:.2f}  {item['class_b']}:{w:.2f}", fontsize=8)
    fig.suptitle(
        "Synthetic ambiguous digits with their machine soft labels (class:mass)", fontsize=10
    )
    fig.tight_layout()
    return fig
