"""The study CNN: two 3x3 conv blocks and a small classifier head (28x28 grey input, 10 logits).

Its initial weights are drawn from a generator seeded by the run's seed only, so that for a
given seed every label condition starts from the same weights (the paired design).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from soft_label_audit import params as p

N_CLASSES = 10
IMAGE_SIDE = 28
#: MNIST pixel mean and std (of byte / 255) used to standardise every input
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081


@dataclass(frozen=True)
class ModelConfig:
    """Widths of the CNN: conv channels (c1, c2) and the hidden units of the head."""

    channels: tuple[int, int]
    hidden: int

    @classmethod
    def from_params(cls, params: dict | None, path: str = "training.model") -> ModelConfig:
        """
        >>> ModelConfig.from_params({"channels": [16, 32], "hidden": 0})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: training.model.hidden must be a positive integer, got 0
        """
        block = p.block(path, params)
        p.no_unknown(path, block, ("channels", "hidden"))
        channels = p.required(path, block, "channels")
        if not isinstance(channels, (list, tuple)) or len(channels) != 2:
            raise p.fail(f"{path}.channels", "two widths [c1, c2]", channels)
        return cls(
            channels=tuple(
                p.positive_int(f"{path}.channels[{i}]", c) for i, c in enumerate(channels)
            ),  # type: ignore[arg-type]
            hidden=p.positive_int(f"{path}.hidden", p.required(path, block, "hidden")),
        )

    def settings(self) -> dict:
        """The settings stored with saved weights (``weights``, teacher models): what
        :meth:`from_params` reads back.

        >>> ModelConfig((16, 32), 64).settings()
        {'channels': [16, 32], 'hidden': 64}
        """
        return {"channels": list(self.channels), "hidden": self.hidden}


class SmallCNN(nn.Module):
    """conv3x3(1->c1)-ReLU-maxpool2 -> conv3x3(c1->c2)-ReLU-maxpool2 -> FC(c2*7*7 -> hidden)-ReLU -> FC(hidden -> 10).

    No dropout and no batch norm: the forward pass is a pure function of weights and inputs,
    which keeps runs deterministic and the vectorised path numerically equal to the plain one.
    """

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None):
        super().__init__()
        c1, c2 = config.channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * (IMAGE_SIDE // 4) ** 2, config.hidden)
        self.fc2 = nn.Linear(config.hidden, N_CLASSES)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None) -> None:
        """He-uniform weights, U(-sqrt(6/fan_in), sqrt(6/fan_in)), and zero biases."""
        for layer in (self.conv1, self.conv2, self.fc1, self.fc2):
            fan_in = layer.weight[0].numel()
            bound = math.sqrt(6.0 / fan_in)
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def init_generator(seed: int) -> torch.Generator:
    """The generator of a run's initial weights: a function of the seed alone."""
    return torch.Generator().manual_seed(int(seed))


def build_model(config: ModelConfig, seed: int) -> SmallCNN:
    return SmallCNN(config, generator=init_generator(seed))


def images_to_tensor(images, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 28, 28) uint8 -> (n, 1, 28, 28) float32, standardised as (x/255 - mean) / std."""
    x = torch.as_tensor(np.array(images, dtype=np.uint8, copy=True), device=device)
    return ((x.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD).unsqueeze(1)
