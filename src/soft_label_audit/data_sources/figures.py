"""The figure of generated items: a grid titled with each item's machine soft label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soft_label_audit import params as p


@dataclass(frozen=True)
class SampleGridConfig:
    """The ``digits.figure`` block: rows and columns of the grid.

    >>> SampleGridConfig.from_params({"rows": 2, "cols": 4}).cols
    4
    """

    rows: int
    cols: int

    @classmethod
    def from_params(cls, params, path: str = "digits.figure") -> SampleGridConfig:
        params = p.block(path, params)
        p.no_unknown(path, params, cls.__dataclass_fields__)
        return cls(
            rows=p.positive_int(f"{path}.rows", p.required(path, params, "rows")),
            cols=p.positive_int(f"{path}.cols", p.required(path, params, "cols")),
        )


def plot_samples(
    images: np.ndarray,
    class_a: np.ndarray,
    class_b: np.ndarray,
    mix_weight: np.ndarray,
    config: SampleGridConfig,
):
    """The first ``rows x cols`` items, each titled ``a:(1 - w)  b:w`` (class:mass)."""
    import matplotlib.pyplot as plt

    rows, cols = config.rows, config.cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols, 1.45 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, image, a, b, w in zip(axes.flat, images, class_a, class_b, mix_weight):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{a}:{1 - w:.2f}  {b}:{w:.2f}", fontsize=8)
    fig.suptitle(
        "Synthetic ambiguous digits with their machine soft labels (class:mass)", fontsize=10
    )
    fig.tight_layout()
    return fig
