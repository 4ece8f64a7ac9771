"""The claims table shown: as GitHub markdown for the README and as a figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from soft_label_audit.reporting.claims import CLAIM_COLUMNS

#: effects, bounds and p-values smaller than this are rounding residue of sums of floats
#: (e.g. 1.85e-17 for two equal mean accuracies), shown as 0
FLOAT_NOISE = 1e-12


def claims_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """The claims table as GitHub markdown (one row per claim and source), for the README;
    with a ``scope`` column when the table has one (test items or the unannotated pool)."""
    missing = [c for c in CLAIM_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"claims table lacks columns {missing}")
    scoped = "scope" in frame
    header = [
        "claim",
        "source",
        *(["scope"] if scoped else []),
        "metric",
        "comparison",
        "effect",
        "interval",
        "p (Holm)",
        "verdict",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def num(x: float) -> str:
        if not np.isfinite(x):
            return "n/a"
        if abs(x) < FLOAT_NOISE:  # a difference of equal means, summed in another order
            x = 0.0
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"

    for r in frame.itertuples(index=False):
        cells = [
            str(r.claim),
            str(r.source),
            *([str(r.scope)] if scoped else []),
            f"`{r.metric}`",
            str(r.comparison).replace("|", "/"),
            num(float(r.effect)),
            f"[{num(float(r.ci_low))}, {num(float(r.ci_high))}]",
            num(float(r.p_adjusted)),
            f"**{r.verdict}**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def claims_figure(frame: pd.DataFrame) -> Figure:
    """Effects with their intervals, one panel per claim, sources side by side; the null value
    dashed; colour by verdict."""
    colours = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:gray"}
    claims = list(dict.fromkeys(frame["claim"])) or ["(no claims)"]
    fig = Figure(figsize=(7.5, 0.9 + 0.75 * len(claims)))
    axes = fig.subplots(len(claims), 1, squeeze=False)[:, 0]
    for ax, claim in zip(axes, claims):
        rows = frame[frame["claim"] == claim]
        for y, r in enumerate(rows.itertuples(index=False)):
            c = colours.get(str(r.verdict), "black")
            ax.errorbar(
                [r.effect],
                [y],
                xerr=[[r.effect - r.ci_low], [r.ci_high - r.effect]],
                fmt="o",
                color=c,
                capsize=3,
            )
            ax.text(
                1.01,
                y,
                f"{r.source}: {r.verdict}",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=7,
                color=c,
            )
        null = float(rows["null"].iloc[0]) if len(rows) and "null" in rows else 0.0
        ax.axvline(null, color="black", lw=0.8, ls="--")
        ax.set_yticks(range(len(rows)), [str(s) for s in rows["source"]] if len(rows) else [])
        ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
        metric = rows["metric"].iloc[0] if len(rows) else ""
        comparison = rows["comparison"].iloc[0] if len(rows) else ""
        ax.set_title(f"{claim}: {metric}, {comparison}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.suptitle(
        "Claims: effect and bootstrap interval (seeds and items); dashed: no effect", fontsize=9
    )
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    return fig
