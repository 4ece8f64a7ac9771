"""Figure builders. Each returns a :class:`matplotlib.figure.Figure` built without pyplot, so
figures are not kept alive by a global figure manager and need no explicit closing; the
catalog (``matplotlib.MatplotlibDataset``) or the tracking hook saves them.

Grids put one row per source and one column per condition, in the study's order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from soft_label_audit.metrics.bands import BANDS
from soft_label_audit.metrics.per_run import BAND_SEPARATOR

PANEL = 2.3  # inches per panel side
BAND_COLOURS = {"all": "0.35", "unanimous": "#4C9F70", "low": "#E0A030", "high": "#C0392B"}
ENTROPY_CMAP = "viridis"


def _label(name: str) -> str:
    return name.replace("_", " ")


def _grid(
    n_rows: int,
    n_cols: int,
    title: str,
    sharex: bool = True,
    sharey: bool = True,
    panel: tuple[float, float] = (PANEL, PANEL),
) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(panel[0] * n_cols + 0.6, panel[1] * n_rows + 0.7), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, sharex=sharex, sharey=sharey, squeeze=False)
    fig.suptitle(title)
    return fig, axes


def _label_edges(
    axes: np.ndarray, conditions: list[str], row_labels: list[str], xlabel: str
) -> None:
    """Condition names above the top row, row labels left of the first column, x label below the last row."""
    for c, condition in enumerate(conditions):
        axes[0, c].set_title(_label(condition), fontsize=9)
        axes[-1, c].set_xlabel(xlabel)
    for r, row_label in enumerate(row_labels):
        axes[r, 0].set_ylabel(row_label)


def _shared_legend(fig: Figure, axes: np.ndarray, ncols: int | None = None) -> None:
    """One legend below the grid, taken from the first panel (every panel draws the same series)."""
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=ncols or len(handles),
            fontsize=8,
            frameon=False,
        )


def pooled_reliability(rel: pd.DataFrame) -> pd.DataFrame:
    """Pool the bins of several seeds: counts add, accuracy and confidence are count-weighted."""
    rel = rel.assign(
        acc_sum=rel["accuracy"].fillna(0) * rel["count"],
        conf_sum=rel["mean_confidence"].fillna(0) * rel["count"],
    )
    pooled = rel.groupby("bin", sort=True).agg(
        bin_lower=("bin_lower", "first"),
        bin_upper=("bin_upper", "first"),
        count=("count", "sum"),
        acc_sum=("acc_sum", "sum"),
        conf_sum=("conf_sum", "sum"),
    )
    nonempty = pooled["count"] > 0
    pooled["accuracy"] = np.where(
        nonempty, pooled["acc_sum"] / pooled["count"].where(nonempty, 1), np.nan
    )
    pooled["mean_confidence"] = np.where(
        nonempty, pooled["conf_sum"] / pooled["count"].where(nonempty, 1), np.nan
    )
    return pooled.reset_index()


def _draw_reliability(ax, pooled: pd.DataFrame, note: str | None) -> None:
    width = (pooled["bin_upper"] - pooled["bin_lower"]).to_numpy()
    left = pooled["bin_lower"].to_numpy()
    acc = pooled["accuracy"].to_numpy()
    conf = pooled["mean_confidence"].to_numpy()
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.5")
    ax.bar(
        left,
        np.nan_to_num(acc),
        width=width,
        align="edge",
        color="#4A78B5",
        edgecolor="white",
        lw=0.5,
        label="accuracy",
    )
    # the gap between accuracy and mean confidence, hatched so it reads the same over a bar
    # (under-confident bins) and over empty space (over-confident bins)
    ok = np.isfinite(acc)
    ax.bar(
        left[ok],
        (conf - acc)[ok],
        bottom=acc[ok],
        width=width[ok],
        align="edge",
        facecolor="none",
        edgecolor="#C0392B",
        hatch="////",
        lw=0.6,
        label="gap to mean confidence",
    )
    share = pooled["count"].to_numpy() / max(pooled["count"].sum(), 1)
    ax.step(
        np.r_[left, 1.0],
        np.r_[share, share[-1]],
        where="post",
        color="0.2",
        lw=0.8,
        label="share of items",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if note:
        ax.text(
            0.04,
            0.95,
            note,
            transform=ax.transAxes,
            va="top",
            fontsize=7.5,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1.5},
        )


def reliability_diagrams(
    reliability: pd.DataFrame,
    metrics_by_run: pd.DataFrame,
    sources: list[str],
    conditions: list[str],
    n_bins: int,
) -> Figure:
    """Top-label reliability diagrams, bins pooled over seeds; ECE mean ± std over seeds in each panel."""
    fig, axes = _grid(
        len(sources),
        len(conditions),
        f"Reliability on test items (top label, {n_bins} equal-width bins, seeds pooled)",
    )
    ece = f"ece_{n_bins}"
    for r, source in enumerate(sources):
        for c, condition in enumerate(conditions):
            ax = axes[r, c]
            rel = reliability[
                (reliability["source"] == source) & (reliability["condition"] == condition)
            ]
            runs = metrics_by_run[
                (metrics_by_run["source"] == source) & (metrics_by_run["condition"] == condition)
            ]
            note = (
                f"ECE {runs[ece].mean():.3f} ± {runs[ece].std(ddof=1):.3f}"
                if len(runs) > 1
                else (f"ECE {runs[ece].mean():.3f}" if len(runs) else None)
            )
            if len(rel):
                _draw_reliability(ax, pooled_reliability(rel), note)
    _label_edges(axes, conditions, [f"{source}\naccuracy" for source in sources], "confidence")
    _shared_legend(fig, axes, ncols=3)
    return fig


def ece_by_band(
    metrics_by_run: pd.DataFrame, sources: list[str], conditions: list[str], n_bins: int
) -> Figure:
    """Grouped bars: top-label ECE on all test items and per human-difficulty band, mean ± std over seeds."""
    fig, axes = _grid(
        len(sources),
        1,
        f"Top-label ECE ({n_bins} bins) by human-difficulty band (mean ± std over seeds)",
        sharey=True,
        sharex=False,
        panel=(0.85 * len(conditions) + 1.5, 2.6),
    )
    ece = f"ece_{n_bins}"
    groups = [("all", ece)] + [(band, f"{ece}{BAND_SEPARATOR}{band}") for band in BANDS]
    width = 0.8 / len(groups)
    x = np.arange(len(conditions))
    for r, source in enumerate(sources):
        ax = axes[r, 0]
        runs = metrics_by_run[metrics_by_run["source"] == source]
        for g, (name, column) in enumerate(groups):
            if column not in runs:
                continue
            stats = (
                runs.groupby("condition")[column].agg(["mean", "std", "count"]).reindex(conditions)
            )
            n_items = column.replace(ece, "n_items")
            items = (
                runs.groupby("condition")[n_items].mean().reindex(conditions)
                if n_items in runs
                else None
            )
            label = name if items is None else f"{name} (~{np.nanmean(items):.0f} items)"
            ax.bar(
                x + (g - (len(groups) - 1) / 2) * width,
                stats["mean"],
                width,
                yerr=stats["std"],
                color=BAND_COLOURS[name],
                label=label,
                capsize=2,
                error_kw={"lw": 0.8},
            )
        ax.set_xticks(x, [_label(c) for c in conditions], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(f"{source}\nECE")
        ax.legend(fontsize=7.5, ncols=4, frameon=False, loc="upper left")
        ax.margins(y=0.25)
    return fig


def cartography_maps(
    cartography: pd.DataFrame,
    sources: list[str],
    conditions: list[str],
    reference: str = "original",
    thresholds: dict[str, float] | None = None,
) -> Figure:
    """Variability (x) against confidence (y) per training item, seed-averaged, coloured by human
    entropy; dotted lines mark the region thresholds (``easy_min_confidence``,
    ``ambiguous_min_variability``) when given."""
    conf, var = f"confidence_{reference}", f"variability_{reference}"
    fig, axes = _grid(
        len(sources),
        len(conditions),
        f"Data maps of training items (reference: {_label(reference)} label, seed means), colour = human entropy"
        + ("; dotted: region thresholds" if thresholds else ""),
    )
    vmax = float(np.nanmax(cartography["human_entropy"])) if len(cartography) else 1.0
    mappable = None
    for r, source in enumerate(sources):
        for c, condition in enumerate(conditions):
            ax = axes[r, c]
            sub = cartography[
                (cartography["source"] == source) & (cartography["condition"] == condition)
            ]
            items = (
                sub.groupby("item_id")[[conf, var, "human_entropy"]]
                .mean()
                .sort_values("human_entropy")
            )
            mappable = ax.scatter(
                items[var],
                items[conf],
                c=items["human_entropy"],
                cmap=ENTROPY_CMAP,
                vmin=0,
                vmax=max(vmax, 1e-9),
                s=5,
                lw=0,
                alpha=0.85,
            )
            if thresholds:
                ax.axhline(thresholds["easy_min_confidence"], color="0.4", ls=":", lw=0.8)
                ax.axvline(thresholds["ambiguous_min_variability"], color="0.4", ls=":", lw=0.8)
            ax.set_xlim(0, max(0.5, float(items[var].max()) * 1.05) if len(items) else 0.5)
            ax.set_ylim(0, 1)
    _label_edges(axes, conditions, [f"{source}\nconfidence" for source in sources], "variability")
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.8, label="human entropy (nats)")
    return fig


def _best_epoch(run: pd.DataFrame) -> int:
    """The run's best epoch as its curves record it (``best_epoch``), else the epoch of its
    lowest ``val_loss`` (the same rule, for curves written before the column existed)."""
    if "best_epoch" in run:
        return int(run["best_epoch"].iloc[0])
    return int(run["epoch"].iloc[int(np.nanargmin(run["val_loss"].to_numpy()))])


def validation_curves(
    curves: pd.DataFrame,
    sources: list[str],
    conditions: list[str],
    columns: tuple[str, ...] = ("val_loss", "val_acc"),
) -> Figure:
    """Validation curves of every seed (one line each), one row per (source, curve); on each
    line a ring marks the run's best epoch (lowest ``val_loss``: the epoch its test and pool
    predictions come from) and a square its final epoch (``final_predictions``)."""
    rows = [(s, col) for s in sources for col in columns]
    fig, axes = _grid(
        len(rows),
        len(conditions),
        "Validation curves, one line per seed (o best epoch, \u25a1 final epoch)",
        sharey="row",
    )
    for r, (source, column) in enumerate(rows):
        for c, condition in enumerate(conditions):
            ax = axes[r, c]
            sub = curves[(curves["source"] == source) & (curves["condition"] == condition)]
            runs = list(sub.groupby("seed", sort=True))
            for k, (seed, run) in enumerate(runs):
                run = run.sort_values("epoch")
                (line,) = ax.plot(
                    run["epoch"], run[column], lw=1, marker=".", ms=3, label=f"seed {seed}"
                )
                best = run[run["epoch"] == _best_epoch(run)]
                last = run.iloc[[-1]]
                marks = {"mfc": "none", "mec": line.get_color(), "ms": 7, "ls": "none"}
                first = k == len(runs) - 1  # one legend entry per marker, after the seeds
                ax.plot(
                    best["epoch"],
                    best[column],
                    marker="o",
                    mew=1.4,
                    label="best epoch (lowest val_loss)" if first else None,
                    **marks,
                )
                ax.plot(
                    last["epoch"],
                    last[column],
                    marker="s",
                    mew=1.0,
                    label="final epoch" if first else None,
                    **marks,
                )
    _label_edges(
        axes, conditions, [f"{source}\n{_label(column)}" for source, column in rows], "epoch"
    )
    _shared_legend(fig, axes)
    return fig


def run_overview(
    reliability: pd.DataFrame,
    cartography: pd.DataFrame | None,
    title: str,
    reference: str = "original",
) -> Figure:
    """One run at a glance: its reliability diagram and its data map coloured by human entropy.

    A fixed layout (no constrained layout): dozens of these are drawn per study.
    """
    fig = Figure(figsize=(7.6, 3.4))
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.14, top=0.86, wspace=0.28)
    ax_rel, ax_map = fig.subplots(1, 2)
    fig.suptitle(title, fontsize=10)
    _draw_reliability(ax_rel, pooled_reliability(reliability), None)
    ax_rel.set_title("reliability (test items)", fontsize=9)
    ax_rel.set_xlabel("confidence")
    ax_rel.set_ylabel("accuracy")
    ax_rel.legend(fontsize=7, loc="upper left", frameon=False)
    if cartography is not None and len(cartography):
        cart = cartography.sort_values("human_entropy")
        sc = ax_map.scatter(
            cart[f"variability_{reference}"],
            cart[f"confidence_{reference}"],
            c=cart["human_entropy"],
            cmap=ENTROPY_CMAP,
            s=5,
            lw=0,
        )
        fig.colorbar(sc, ax=ax_map, label="human entropy (nats)", pad=0.02)
        ax_map.set_xlim(0, max(0.5, float(cart[f"variability_{reference}"].max()) * 1.05))
    ax_map.set_ylim(0, 1)
    ax_map.set_title("data map (training items)", fontsize=9)
    ax_map.set_xlabel("variability")
    ax_map.set_ylabel(f"confidence ({_label(reference)} label)")
    return fig
