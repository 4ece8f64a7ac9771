"""The claims table: what the data supports, claim by claim and source by source.

Each claim of the declared primary family (``reporting.claims``) is one directional test of
one metric. Kinds:

* ``difference``: ``effect = M(condition) - M(baseline)``, M the mean over seeds of the
  test-set metric; seeds and items bootstrapped jointly (:mod:`.bootstrap`);
* ``band_contrast``: ``effect = [M_band(condition) - M_band(baseline)] - [M(condition) -
  M(baseline)]``, the difference on the items of one human-difficulty band minus the
  difference on all items, from the same draws;
* ``spread_ratio``: ``effect = std(condition) / std(baseline)`` over seeds (null 1), paired
  seed bootstrap (:mod:`.stability`);
* ``correlation``: ``effect = rho(condition) - rho(baseline)``, rho the per-seed Spearman
  correlation of a cartography coordinate with the human entropy over training items, averaged
  over seeds; seeds and training items bootstrapped jointly.

p-values are two-sided bootstrap p-values, Holm-adjusted over every row of the table (all
claims and sources). Verdict rule (:func:`verdict`), with the null value 0 (1 for ratios):
``supported`` when the interval lies entirely on the claimed side of the null and the
adjusted p-value is below ``alpha``; ``contradicted`` when it lies entirely on the other side
and the adjusted p-value is below ``alpha``; otherwise ``inconclusive``. A claim whose
conditions or metric the study lacks is skipped with a logged note.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from soft_label_audit.metrics.per_run import BAND_SEPARATOR
from soft_label_audit.reporting import bootstrap
from soft_label_audit.reporting.multiple import holm
from soft_label_audit.reporting.stability import (
    detectable_spread_ratio,
    spread_ratio,
    std_relative_error,
)
from soft_label_audit.reporting.statistics import SourceBootstrap

log = logging.getLogger(__name__)

CLAIM_COLUMNS = [
    "claim",
    "source",
    "metric",
    "comparison",
    "effect",
    "ci_low",
    "ci_high",
    "p_adjusted",
    "verdict",
]
EXTRA_COLUMNS = [
    "statement",
    "kind",
    "condition",
    "baseline",
    "direction",
    "null",
    "p_value",
    "n_seeds",
    "n_items",
    "resampled",
]
POWER_COLUMNS = [
    "claim",
    "source",
    "metric",
    "comparison",
    "n_seeds",
    "n_items",
    "alpha_per_test",
    "sd_seed",
    "se_items",
    "detectable_effect",
    "detectable_effect_infinite_seeds",
    "target_effect",
    "seeds_for_target",
    "seeds_for_target_items_fixed",
    "items_for_target",
]
KINDS = ("difference", "band_contrast", "spread_ratio", "correlation")
DIRECTIONS = ("increase", "decrease")
VERDICTS = ("supported", "contradicted", "inconclusive")


def verdict(
    ci_low: float,
    ci_high: float,
    p_adjusted: float,
    direction: str,
    alpha: float,
    null: float = 0.0,
) -> str:
    """``supported`` / ``contradicted`` / ``inconclusive`` (rule in the module docstring)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if (
        not (np.isfinite(ci_low) and np.isfinite(ci_high) and np.isfinite(p_adjusted))
        or p_adjusted >= alpha
    ):
        return "inconclusive"
    above, below = ci_low > null, ci_high < null
    if (above and direction == "increase") or (below and direction == "decrease"):
        return "supported"
    if above or below:
        return "contradicted"
    return "inconclusive"


def _check_claim(claim: dict[str, Any]) -> None:
    for key in ("id", "metric", "condition", "baseline", "direction"):
        if key not in claim:
            raise ValueError(
                f"reporting.claims: claim {claim.get('id', claim)!r} lacks the key {key!r}"
            )
    kind = claim.get("kind", "difference")
    if kind not in KINDS:
        raise ValueError(
            f"reporting.claims: claim {claim['id']!r} has kind {kind!r}; choose from {KINDS}"
        )
    if claim["direction"] not in DIRECTIONS:
        raise ValueError(
            f"reporting.claims: claim {claim['id']!r} has direction {claim['direction']!r}; "
            f"choose from {DIRECTIONS}"
        )
    if kind == "band_contrast" and "band" not in claim:
        raise ValueError(f"reporting.claims: band_contrast claim {claim['id']!r} needs a 'band'")
    if kind == "correlation" and "cartography_column" not in claim:
        raise ValueError(
            f"reporting.claims: correlation claim {claim['id']!r} needs a 'cartography_column'"
        )


def _comparison(claim: dict[str, Any]) -> str:
    kind = claim.get("kind", "difference")
    c, b = claim["condition"], claim["baseline"]
    if kind == "spread_ratio":
        return f"std over seeds: {c} / {b}"
    if kind == "band_contrast":
        return f"({c} - {b}) on {claim['band']} band - ({c} - {b}) on all items"
    return f"{c} - {b}"


class ClaimEvaluator:
    """Evaluates the claims on the bootstraps of every source."""

    def __init__(
        self,
        boots: dict[str, SourceBootstrap],
        cartography: pd.DataFrame | None,
        params: dict[str, Any],
    ):
        self.boots, self.cartography = boots, cartography
        boot_params = params.get("bootstrap") or {}
        self.n_resamples = int(boot_params.get("n_resamples", 2000))
        self.seed = int(boot_params.get("seed", 0))
        self.confidence = float(params["confidence"])
        self.alpha = float(params.get("alpha", 0.05))
        self.power_params = params.get("power") or {}
        self._corr: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}

    # -- resampled effects: (effect distribution over seeds+items, over items only, n_items, how)
    def _difference(
        self, boot: SourceBootstrap, claim: dict, metric: str, items_only: bool = False
    ):
        values, how = boot.resampled(metric, items_only)
        runs = boot.runs
        return values[:, runs.index(claim["condition"])] - values[
            :, runs.index(claim["baseline"])
        ], how

    def _effects(self, boot: SourceBootstrap, claim: dict) -> dict[str, Any]:
        kind = claim.get("kind", "difference")
        runs = boot.runs
        pair = [claim["baseline"], claim["condition"]]
        metric = claim["metric"]
        if kind == "difference":
            per_seed = boot.per_seed.get(metric, pair)
            boot_all, how = self._difference(boot, claim, metric)
            boot_items, _ = self._difference(boot, claim, metric, items_only=True)
            return dict(
                effect=float(np.mean(per_seed[1] - per_seed[0])),
                boot=boot_all,
                boot_items=boot_items,
                per_seed=per_seed[1] - per_seed[0],
                n_items=len(runs.item_ids),
                resampled=how,
            )
        if kind == "band_contrast":
            band_metric = f"{metric}{BAND_SEPARATOR}{claim['band']}"
            seed_all = boot.per_seed.get(metric, pair)
            seed_band = boot.per_seed.get(band_metric, pair)
            per_seed = (seed_band[1] - seed_band[0]) - (seed_all[1] - seed_all[0])
            parts = [
                self._difference(boot, claim, m, io)
                for io in (False, True)
                for m in (band_metric, metric)
            ]
            return dict(
                effect=float(np.mean(per_seed)),
                boot=parts[0][0] - parts[1][0],
                boot_items=parts[2][0] - parts[3][0],
                per_seed=per_seed,
                n_items=int(np.sum(runs.band == claim["band"])),
                resampled=parts[0][1],
            )
        if kind == "spread_ratio":
            per_seed = boot.per_seed.get(metric, pair)
            res = spread_ratio(
                per_seed[1], per_seed[0], self.n_resamples, self.seed, self.confidence
            )
            return dict(
                effect=res["ratio"],
                ci=(res["ratio_low"], res["ratio_high"]),
                p_value=res["p_value"],
                per_seed=None,
                n_items=len(runs.item_ids),
                resampled="seeds",
            )
        # correlation over training items
        per_seed = boot.per_seed.get(metric, pair)
        values, reference = self._cartography_arrays(
            boot.source, pair, claim["cartography_column"], runs.seeds
        )
        rng = np.random.default_rng([self.seed, 7, *boot.source.encode()])
        draws = bootstrap.draw(self.n_resamples, len(runs.seeds), values.shape[2], rng)
        fixed_seeds = bootstrap.Draws(np.ones_like(draws.seeds), draws.items)
        both = bootstrap.resample_correlation(values, reference, draws)
        items = bootstrap.resample_correlation(values, reference, fixed_seeds)
        return dict(
            effect=float(np.mean(per_seed[1] - per_seed[0])),
            boot=both[:, 1] - both[:, 0],
            boot_items=items[:, 1] - items[:, 0],
            per_seed=per_seed[1] - per_seed[0],
            n_items=values.shape[2],
            resampled="seeds+training items",
        )

    def _cartography_arrays(
        self, source: str, conditions: list[str], column: str, seeds: np.ndarray
    ):
        if self.cartography is None or column not in self.cartography:
            raise ValueError(
                f"cartography_by_run lacks the column {column!r} that a correlation claim needs"
            )
        cart = self.cartography[self.cartography["source"].astype(str) == source]
        reference = (
            cart.drop_duplicates("item_id").set_index("item_id")["human_entropy"].sort_index()
        )
        values = np.stack(
            [
                cart[cart["condition"].astype(str) == c]
                .pivot(index="seed", columns="item_id", values=column)
                .reindex(index=seeds, columns=reference.index)
                .to_numpy(dtype=np.float64)
                for c in conditions
            ]
        )
        if np.isnan(values).any():
            raise ValueError(
                f"cartography_by_run: {source} conditions {conditions} do not cover the same seeds "
                "and training items"
            )
        return values, reference.to_numpy(dtype=np.float64)

    def evaluate(self, claims: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(claims table, power table); Holm adjustment over every row of the claims table."""
        rows, power_rows = [], []
        for claim in claims:
            _check_claim(claim)
            kind = claim.get("kind", "difference")
            null = 1.0 if kind == "spread_ratio" else 0.0
            for source, boot in self.boots.items():
                missing = [
                    c
                    for c in (claim["condition"], claim["baseline"])
                    if c not in boot.runs.conditions
                ]
                metric_cols = [claim["metric"]]
                if kind == "band_contrast":
                    metric_cols.append(f"{claim['metric']}{BAND_SEPARATOR}{claim['band']}")
                absent = [m for m in metric_cols if m not in boot.metrics_by_run]
                if missing or absent:
                    log.warning(
                        "claim %s skipped for source %s: the study has no %s",
                        claim["id"],
                        source,
                        f"condition {missing}" if missing else f"metric {absent}",
                    )
                    continue
                res = self._effects(boot, claim)
                if "ci" in res:
                    low, high = res["ci"]
                    p_value = res["p_value"]
                else:
                    low, high = bootstrap.percentile_interval(res["boot"], self.confidence)
                    p_value = bootstrap.bootstrap_p_value(res["boot"], null)
                rows.append(
                    {
                        "claim": claim["id"],
                        "source": source,
                        "metric": claim["metric"],
                        "comparison": _comparison(claim),
                        "effect": res["effect"],
                        "ci_low": low,
                        "ci_high": high,
                        "p_adjusted": np.nan,
                        "verdict": "",
                        "statement": claim.get("statement", ""),
                        "kind": kind,
                        "condition": claim["condition"],
                        "baseline": claim["baseline"],
                        "direction": claim["direction"],
                        "null": null,
                        "p_value": p_value,
                        "n_seeds": len(boot.runs.seeds),
                        "n_items": res["n_items"],
                        "resampled": res["resampled"],
                    }
                )
                power_rows.append((claim, source, res, len(boot.runs.seeds)))
        table = pd.DataFrame(rows, columns=CLAIM_COLUMNS + EXTRA_COLUMNS)
        if len(table):
            table["p_adjusted"] = holm(table["p_value"].to_numpy())
            table["verdict"] = [
                verdict(r.ci_low, r.ci_high, r.p_adjusted, r.direction, self.alpha, r.null)
                for r in table.itertuples()
            ]
        m = max(len(table), 1)
        power_rows += self._reference_rows()
        power = pd.DataFrame(
            [self._power(c, s, r, n, m) for c, s, r, n in power_rows], columns=POWER_COLUMNS
        )
        return table, power

    def _reference_rows(self) -> list[tuple]:
        """Power rows for a plain difference of every target metric (``power.targets``) between
        ``power.reference`` conditions (default human_soft vs original_hard), claim or not."""
        ref = self.power_params.get("reference") or {}
        condition = str(ref.get("condition", "human_soft"))
        baseline = str(ref.get("baseline", "original_hard"))
        out = []
        for metric in self.power_params.get("targets") or {}:
            claim = {
                "id": f"reference_{metric}",
                "metric": metric,
                "condition": condition,
                "baseline": baseline,
                "direction": "increase",
            }
            for source, boot in self.boots.items():
                if {condition, baseline} <= set(boot.runs.conditions) and metric in boot.per_seed:
                    out.append((claim, source, self._effects(boot, claim), len(boot.runs.seeds)))
        return out

    def _power(
        self, claim: dict, source: str, res: dict, n_seeds: int, family_size: int
    ) -> dict[str, Any]:
        """Minimum detectable effect at 80% power and the seeds a target effect needs."""
        power = float(self.power_params.get("power", 0.8))
        alpha = self.alpha / family_size  # Holm's first step: the strictest threshold of the family
        targets = self.power_params.get("targets") or {}
        target = float(targets[claim["metric"]]) if claim["metric"] in targets else float("nan")
        row = {
            "claim": claim["id"],
            "source": source,
            "metric": claim["metric"],
            "comparison": _comparison(claim),
            "n_seeds": n_seeds,
            "n_items": res["n_items"],
            "alpha_per_test": alpha,
            "target_effect": target,
        }
        if res.get("per_seed") is None:  # spread ratio: F-test approximation
            return {
                **row,
                "sd_seed": np.nan,
                "se_items": np.nan,
                "detectable_effect": detectable_spread_ratio(n_seeds, alpha, power),
                "detectable_effect_infinite_seeds": np.nan,
                "seeds_for_target": np.nan,
                "seeds_for_target_items_fixed": np.nan,
                "items_for_target": np.nan,
            }
        sd_seed, se_items = seed_and_item_components(res["per_seed"], res["boot_items"])
        mde = detectable_effect(sd_seed, se_items, n_seeds, alpha, power)
        return {
            **row,
            "sd_seed": sd_seed,
            "se_items": se_items,
            "detectable_effect": mde,
            "detectable_effect_infinite_seeds": float(
                (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se_items
            ),
            "seeds_for_target": seeds_for_effect(target, sd_seed, se_items, alpha, power),
            # the same test items for ever: only the seed component counts
            "seeds_for_target_items_fixed": seeds_for_effect(target, sd_seed, 0.0, alpha, power),
            # items for the target with unlimited seeds, the item error shrinking as 1/sqrt(n)
            "items_for_target": items_for_effect(target, se_items, res["n_items"], alpha, power),
        }


def seed_and_item_components(
    per_seed_effects: np.ndarray, item_resampled_effects: np.ndarray
) -> tuple[float, float]:
    """(sd of the effect across seeds, standard error of the effect from the item sample).

    The seed component is the sample std (ddof=1) of the per-seed effects (each on all items);
    the item component is the std of the effect when only the test items are resampled
    (seeds fixed). The standard error of the effect with ``S`` seeds is then approximately
    ``sqrt(sd_seed^2 / S + se_items^2)`` (the item-by-seed interaction counted in both: a
    slight overestimate).
    """
    d = np.asarray(per_seed_effects, dtype=np.float64)
    d = d[np.isfinite(d)]
    sd_seed = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    b = np.asarray(item_resampled_effects, dtype=np.float64)
    b = b[np.isfinite(b)]
    se_items = float(np.std(b, ddof=1)) if len(b) > 1 else float("nan")
    return sd_seed, se_items


def detectable_effect(sd_seed: float, se_items: float, n_seeds, alpha: float, power: float = 0.8):
    """Smallest effect a two-sided test at ``alpha`` detects with ``power`` from ``n_seeds``
    seeds: ``(t_{1-alpha/2, S-1} + t_{power, S-1}) * sqrt(sd_seed^2 / S + se_items^2)``
    (``n_seeds`` may be an array)."""
    s = np.asarray(n_seeds, dtype=np.float64)
    if not np.isfinite(sd_seed) or not np.isfinite(se_items):
        return np.full(s.shape, np.nan) if s.ndim else float("nan")
    with np.errstate(invalid="ignore"):
        df = np.where(s >= 2, s - 1, np.nan)
        se = np.sqrt(sd_seed**2 / s + se_items**2)
        out = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se
    return out if s.ndim else float(out)


def seeds_for_effect(
    target: float,
    sd_seed: float,
    se_items: float,
    alpha: float,
    power: float = 0.8,
    max_seeds: int = 1000,
) -> float:
    """Fewest seeds (>= 2) whose detectable effect is at most ``target``; NaN when the item
    sample alone makes the target unreachable (or beyond ``max_seeds``)."""
    if not np.isfinite(target) or target <= 0:
        return float("nan")
    seeds = np.arange(2, max_seeds + 1)
    ok = np.flatnonzero(detectable_effect(sd_seed, se_items, seeds, alpha, power) <= target)
    return float(seeds[ok[0]]) if len(ok) else float("nan")


def items_for_effect(
    target: float, se_items: float, n_items: int, alpha: float, power: float = 0.8
) -> float:
    """Test items that bring the item part of the detectable effect down to ``target`` with
    unlimited seeds, assuming its standard error shrinks as ``1 / sqrt(n)`` (normal quantiles)."""
    if not (np.isfinite(target) and target > 0 and np.isfinite(se_items)):
        return float("nan")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(np.ceil(n_items * (z * se_items / target) ** 2))


def evaluate_claims(
    boots: dict[str, SourceBootstrap], cartography: pd.DataFrame | None, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims table, power table) of ``params['claims']`` (the reporting parameters)."""
    return ClaimEvaluator(boots, cartography, params).evaluate(list(params.get("claims") or []))


def stability_ratios(
    boots: dict[str, SourceBootstrap],
    metrics: list[str],
    baseline: str,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> pd.DataFrame:
    """Per (source, condition): for each metric, the ratio of seed spreads to ``baseline`` with
    its interval, and the relative error of a std from the study's number of seeds."""
    rows = []
    for source, boot in boots.items():
        conditions = list(boot.runs.conditions)
        if baseline not in conditions:
            log.warning("stability ratios skipped for %s: no %s runs", source, baseline)
            continue
        for condition in conditions:
            row: dict[str, Any] = {
                "source": source,
                "condition": condition,
                "std_relative_error": std_relative_error(len(boot.runs.seeds)),
            }
            for metric in metrics:
                if metric not in boot.per_seed:
                    continue
                per_seed = boot.per_seed.get(metric, [baseline, condition])
                res = spread_ratio(per_seed[1], per_seed[0], n_resamples, seed, confidence)
                row |= {
                    f"{metric}__std_ratio": res["ratio"],
                    f"{metric}__std_ratio_low": res["ratio_low"],
                    f"{metric}__std_ratio_high": res["ratio_high"],
                    f"{metric}__std_ratio_p": res["p_value"],
                }
            rows.append(row)
    return pd.DataFrame(rows)


#: effects, bounds and p-values smaller than this are rounding residue of sums of floats
#: (e.g. 1.85e-17 for two equal mean accuracies), shown as 0
FLOAT_NOISE = 1e-12


def claims_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """The claims table as GitHub markdown (one row per claim and source), for the README."""
    missing = [c for c in CLAIM_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"claims table lacks columns {missing}")
    header = [
        "claim",
        "source",
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
