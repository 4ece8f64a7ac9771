"""Figures of the annotation stage (matplotlib, Agg): plain functions returning Figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from soft_label_audit.columns import CHOICES, H_COLS  # noqa: E402
from soft_label_audit.crowd import sources  # noqa: E402
from soft_label_audit.data_sources.tables import images_from_column  # noqa: E402


def _title(annotation_source: str) -> str:
    note = sources.title_note(annotation_source)
    return f"annotation source: {annotation_source}" + (f" ({note})" if note else "")


def entropy_by_source(item_stats: pd.DataFrame, annotation_source: str) -> plt.Figure:
    """Histogram of human entropy (nats, 11 slots) per item source."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, np.log(len(H_COLS)), 31)
    for source, group in item_stats.groupby("source"):
        ax.hist(
            group["human_entropy"],
            bins=bins,
            alpha=0.6,
            label=f"{source} (n={len(group)}, mean {group['human_entropy'].mean():.3f})",
        )
    ax.set_xlabel("human entropy (nats)")
    ax.set_ylabel("items")
    ax.set_yscale("symlog", linthresh=10)
    ax.legend(fontsize=8)
    ax.set_title("Human entropy by source\n" + _title(annotation_source), fontsize=9)
    fig.tight_layout()
    return fig


def mode_confusion(item_stats: pd.DataFrame, annotation_source: str) -> plt.Figure:
    """Confusion matrix of original label (rows) against human mode (columns), per source."""
    sources = sorted(item_stats["source"].unique()) or ["none"]
    fig, axes = plt.subplots(1, len(sources), figsize=(4.2 * len(sources), 4.0), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        group = item_stats[item_stats["source"] == source]
        m = np.zeros((10, 10), int)
        np.add.at(m, (group["original_label"].to_numpy(int), group["human_mode"].to_numpy(int)), 1)
        ax.imshow(np.log1p(m), cmap="Blues")
        for (r, c), v in np.ndenumerate(m):
            if v:
                ax.text(
                    c,
                    r,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="black" if r != c else "white",
                )
        shift = group["mode_shift"].mean() if len(group) else float("nan")
        ax.set_title(f"{source}: mode shift {shift:.1%}", fontsize=9)
        ax.set_xlabel("human mode")
        ax.set_ylabel("original label")
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
    fig.suptitle("Original label vs human mode — " + _title(annotation_source), fontsize=9)
    fig.tight_layout()
    return fig


def disputed_items(
    item_stats: pd.DataFrame,
    soft_labels: pd.DataFrame,
    study_digits: pd.DataFrame,
    n_items: int,
    annotation_source: str,
) -> plt.Figure:
    """The ``n_items`` items of highest human entropy: image above, soft label (vote shares) below."""
    top = item_stats.nlargest(n_items, "human_entropy")
    cols = max(1, min(8, len(top)))
    rows = max(1, int(np.ceil(len(top) / cols)))
    fig, axes = plt.subplots(
        2 * rows,
        cols,
        figsize=(1.6 * cols, 2.9 * rows),
        squeeze=False,
        gridspec_kw={"height_ratios": [1.0, 0.7] * rows},
    )
    for ax in axes.flat:
        ax.set_axis_off()
    h = soft_labels.set_index("item_id")
    images = study_digits.set_index("item_id")["image"]
    for k, (_, item) in enumerate(top.iterrows()):
        r, c = divmod(k, cols)
        ax_img, ax_bar = axes[2 * r, c], axes[2 * r + 1, c]
        ax_img.imshow(images_from_column(images.loc[[item["item_id"]]])[0], cmap="gray_r")
        ax_img.set_title(
            f"{item['item_id']} ({item['source'][:5]})\nlabel {item['original_label']}, H={item['human_entropy']:.2f}",
            fontsize=6,
        )
        ax_bar.set_axis_on()
        ax_bar.bar(
            range(len(H_COLS)),
            h.loc[item["item_id"], list(H_COLS)].to_numpy(float),
            color="tab:blue",
        )
        ax_bar.set_xticks(
            range(len(H_COLS)), [c_[:1] if c_ != "none" else "∅" for c_ in CHOICES], fontsize=5
        )
        ax_bar.set_ylim(0, 1)
        ax_bar.tick_params(axis="y", labelsize=5)
    fig.suptitle(
        "Most disputed items and their vote shares — " + _title(annotation_source), fontsize=8
    )
    fig.tight_layout()
    return fig
