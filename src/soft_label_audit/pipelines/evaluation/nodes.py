"""Nodes of the `evaluation` pipeline: thin adapters from catalog tables to ``metrics``.

Each namespace ``{source}.{condition}`` runs the same nodes; ``source`` and ``condition`` are
bound when the pipeline is wired. The input tables' columns, keys and namespace are their
contracts (:mod:`soft_label_audit.contracts`, checked by the catalog hook); the nodes check only
relations between tables (every predicted item has a human label, the seeds agree).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from soft_label_audit import run_tables
from soft_label_audit.columns import H_COLS, P_COLS, T_COLS
from soft_label_audit.configs import EvaluationConfig
from soft_label_audit.human_labels import entropy as entropy_of
from soft_label_audit.human_labels import human_digits, human_entropy
from soft_label_audit.metrics import calibration, cartography, stability
from soft_label_audit.metrics.bands import difficulty_band, none_band
from soft_label_audit.metrics.convergence import convergence
from soft_label_audit.metrics.per_run import SCOPE_PREFIXES, score_label_free, score_test_set
from soft_label_audit.reporting import figures

RUN_KEYS = ["source", "condition", "seed"]
REFERENCES = cartography.REFERENCES
#: the item_stats column holding each reference label
REFERENCE_COLUMNS = {"original": "original_label", "human_mode": "human_mode"}


def _item_lookup(
    item_ids: np.ndarray, human_soft_labels: pd.DataFrame, item_stats: pd.DataFrame, what: str
) -> pd.DataFrame:
    """Human label and item statistics for ``item_ids``, in that order; every id must be known.

    Columns and one row per item_id are the tables' contracts (:mod:`soft_label_audit.contracts`);
    that every predicted item has a human label is a relation between tables, checked here."""
    info = pd.DataFrame({"item_id": np.asarray(item_ids, dtype=np.int64)})
    info = info.merge(
        human_soft_labels[["item_id", *H_COLS]], on="item_id", how="left", validate="many_to_one"
    )
    info = info.merge(
        item_stats[["item_id", "original_label", "human_entropy", "human_mode", "mode_shift"]],
        on="item_id",
        how="left",
        validate="many_to_one",
    )
    unknown = info.loc[
        info[list(H_COLS) + ["original_label"]].isna().any(axis=1), "item_id"
    ].unique()
    if len(unknown):
        raise ValueError(
            f"{what}: item_ids {unknown[:5].tolist()} (of {len(unknown)}) have no human label or item_stats row"
        )
    return info


def _one_entropy(h11: np.ndarray, info: pd.DataFrame, none_slot: str, what: str) -> np.ndarray:
    """The human entropy of the ``human_soft`` target (``human_labels.human_entropy``); it must
    equal ``item_stats.human_entropy``, else item_stats was built under another none-slot rule."""
    entropy = human_entropy(h11, none_slot)
    stats = info["human_entropy"].to_numpy(dtype=np.float64)
    off = np.flatnonzero(~np.isclose(entropy, stats, atol=1e-9))
    if off.size:
        raise ValueError(
            f"{what}: item_stats.human_entropy differs from the entropy of the human_soft target "
            f"(labels.none_slot={none_slot!r}) for item_ids "
            f"{info['item_id'].iloc[off[:5]].tolist()} "
            f"(of {off.size}); rerun the annotation pipeline with the same labels.none_slot"
        )
    return entropy


def score_test_predictions(
    test_predictions: pd.DataFrame,
    human_soft_labels: pd.DataFrame,
    item_stats: pd.DataFrame,
    params: dict[str, Any],
    none_slot: str,
    *,
    source: str,
    condition: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per seed: every test-set metric (overall, per band and on the mode-shifted items of
    ``item_stats.mode_shift``, the one shift set of every condition) and the reliability bins.

    ``none_slot`` (``labels.none_slot``) maps the human label onto the digits exactly as the
    training targets did.
    """
    config = EvaluationConfig.from_params(params)
    rows, reliability = [], []
    for seed, run in test_predictions.groupby("seed", sort=True):
        what = f"{source}.{condition}.test_predictions seed {seed}"
        info = _item_lookup(run["item_id"].to_numpy(), human_soft_labels, item_stats, what)
        probs = run[list(P_COLS)].to_numpy(dtype=np.float64)
        scores = _score_run(probs, info, config, none_slot, f"{source}.{condition} seed {seed}")
        rows.append({"source": source, "condition": condition, "seed": int(seed), **scores})
        bins = calibration.reliability_table(
            probs, info["original_label"].to_numpy(dtype=np.int64), config.n_bins, "width"
        )
        reliability.append(bins.assign(source=source, condition=condition, seed=int(seed)))
    if not rows:
        raise ValueError(f"{source}.{condition}.test_predictions is empty")
    rel = pd.concat(reliability, ignore_index=True)
    rel = rel[RUN_KEYS + [c for c in rel.columns if c not in RUN_KEYS]]
    return pd.DataFrame(rows), rel


def _score_run(
    probs: np.ndarray, info: pd.DataFrame, config: EvaluationConfig, none_slot: str, what: str
) -> dict[str, float]:
    """Every test-set metric of one run (:func:`soft_label_audit.metrics.per_run.score_test_set`)."""
    bands, floor = config.bands, config.calibration_floor
    h11 = info[list(H_COLS)].to_numpy(dtype=np.float64)
    entropy = _one_entropy(h11, info, none_slot, what)
    band = difficulty_band(entropy, bands.unanimous_max, bands.low_max)
    nones = none_band(h11[:, -1], bands.mostly_none_min)
    return score_test_set(
        probs,
        info["original_label"].to_numpy(dtype=np.int64),
        info["human_mode"].to_numpy(dtype=np.int64),
        human_digits(h11, none_slot),
        entropy,
        band,
        config.n_bins,
        none_band=nones,
        floor_draws=floor.draws,
        floor_quantile=floor.quantile,
        floor_seed=floor.seed,
        mode_shift=info["mode_shift"].to_numpy(dtype=bool),
    )


def score_other_scopes(
    pool_predictions: pd.DataFrame,
    final_predictions: pd.DataFrame,
    pool_digits: pd.DataFrame,
    item_stats: pd.DataFrame,
    params: dict[str, Any],
    *,
    source: str,
    condition: str,
) -> pd.DataFrame:
    """Per seed: the label-free metrics (:func:`~soft_label_audit.metrics.per_run.score_label_free`)
    of the pool items at the best epoch (``pool__*``) and of the test and pool items at the
    final epoch (``final__*``, ``final__pool__*``), against the items' original labels
    (``pool_digits`` for the pool, ``item_stats`` for the test items). A source without pool
    items gets ``pool__n_items`` 0 and NaN pool metrics."""
    config = EvaluationConfig.from_params(params)
    labels = {
        "pool": pool_digits.loc[pool_digits["source"] == source, ["item_id", "original_label"]],
        "test": item_stats[["item_id", "original_label"]],
    }
    scored = {
        ("best", "pool"): pool_predictions,
        ("final", "test"): final_predictions[final_predictions["scope"] == "test"],
        ("final", "pool"): final_predictions[final_predictions["scope"] == "pool"],
    }
    seeds = sorted(set(final_predictions["seed"]) | set(pool_predictions["seed"]))
    rows = []
    for seed in seeds:
        row: dict[str, Any] = {"seed": int(seed)}
        for (epoch, scope), table in scored.items():
            run = table[table["seed"] == seed]
            what = f"{source}.{condition} {epoch}-epoch {scope} predictions seed {seed}"
            scores = _label_free_scores(run, labels[scope], config, what)
            prefix = SCOPE_PREFIXES[(epoch, scope)]
            row.update({f"{prefix}{name}": value for name, value in scores.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _label_free_scores(
    run: pd.DataFrame, labels: pd.DataFrame, config: EvaluationConfig, what: str
) -> dict[str, float]:
    """The label-free metrics of one run's predictions of one item set."""
    floor = config.calibration_floor
    return score_label_free(
        run[list(P_COLS)].to_numpy(dtype=np.float64),
        _original_labels(run["item_id"].to_numpy(), labels, what),
        config.n_bins,
        floor.draws,
        floor.quantile,
        floor.seed,
    )


def _original_labels(item_ids: np.ndarray, labels: pd.DataFrame, what: str) -> np.ndarray:
    """The original label of each of ``item_ids`` (in that order); every id must have one."""
    found = pd.DataFrame({"item_id": np.asarray(item_ids, np.int64)}).merge(
        labels, on="item_id", how="left", validate="many_to_one"
    )
    unknown = found.loc[found["original_label"].isna(), "item_id"]
    if len(unknown):
        raise ValueError(f"{what}: item_ids {unknown[:5].tolist()} have no original label")
    return found["original_label"].to_numpy(dtype=np.int64)


def map_training_dynamics(
    dynamics: dict[str, Any],
    item_stats: pd.DataFrame,
    targets: pd.DataFrame,
    params: dict[str, Any],
    *,
    source: str,
    condition: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cartography coordinates per (seed, training item), and per seed the rank correlations
    with human entropy and with the entropy of the condition's own ``targets`` (what the model
    was trained to mirror), and the region shares, against the original label and the human
    mode (:func:`soft_label_audit.metrics.cartography.map_runs`)."""
    item_ids, seeds, probs = run_tables.read_dynamics(dynamics, f"{source}.{condition}.dynamics")
    info = _training_item_stats(item_ids, item_stats, f"{source}.{condition}.dynamics")
    entropy = info["human_entropy"].to_numpy(dtype=np.float64)
    own = _target_entropy(item_ids, targets, f"{source}.{condition}.targets")
    labels = {ref: info[REFERENCE_COLUMNS[ref]].to_numpy(dtype=np.int64) for ref in REFERENCES}
    thresholds = EvaluationConfig.from_params(params).cartography
    columns, per_seed = cartography.map_runs(
        probs,
        labels,
        entropy,
        thresholds.burn_in_fraction,
        thresholds.easy_min_confidence,
        thresholds.ambiguous_min_variability,
        target_entropy=own,
    )
    keys = pd.DataFrame({"source": source, "condition": condition, "seed": seeds})
    summary = pd.concat([keys, pd.DataFrame(per_seed)], axis=1)
    n = len(item_ids)
    table = keys.loc[keys.index.repeat(n)].reset_index(drop=True)
    table["item_id"] = np.tile(item_ids, len(seeds))
    for column in ("original_label", "human_mode", "human_entropy"):
        table[column] = np.tile(info[column].to_numpy(), len(seeds))
    table = table.assign(**{name: values.reshape(-1) for name, values in columns.items()})
    return table, summary


def _target_entropy(item_ids: np.ndarray, targets: pd.DataFrame, what: str) -> np.ndarray:
    """Entropy (nats) of the training target of each of ``item_ids``, in that order, rounded to
    1e-12 nats: targets of one entropy (a uniform smoothing puts its label in another column
    on each item, so their float sums differ in the last bits) must tie in the ranks, not
    correlate by rounding noise. Every item must have a target row of split ``train`` (a
    relation between the dynamics and the targets the run was trained on)."""
    rows = pd.DataFrame({"item_id": item_ids}).merge(
        targets[["item_id", "split", *T_COLS]], on="item_id", how="left", validate="many_to_one"
    )
    wrong = rows.loc[rows["split"].astype(str) != "train", "item_id"]
    if len(wrong):
        raise ValueError(
            f"{what}: training items {wrong.tolist()[:5]} (of {len(wrong)}) have no target row "
            "of split 'train'"
        )
    return np.round(entropy_of(rows[list(T_COLS)].to_numpy(dtype=np.float64)), 12)


def _training_item_stats(item_ids: np.ndarray, item_stats: pd.DataFrame, what: str) -> pd.DataFrame:
    """item_stats rows for ``item_ids``, in that order; every id must have one."""
    info = pd.DataFrame({"item_id": item_ids}).merge(
        item_stats[["item_id", "original_label", "human_entropy", "human_mode"]],
        on="item_id",
        how="left",
        validate="many_to_one",
    )
    unknown = info.loc[info["original_label"].isna(), "item_id"]
    if len(unknown):
        raise ValueError(f"{what}: item_ids {unknown[:5].tolist()} have no item_stats row")
    return info


CONVERGENCE_COLUMNS = [
    "seed",
    "convergence_epoch",
    "best_epoch",
    "val_loss_gain_last_fifth",
    "val_loss_converged",
]


def convergence_by_seed(
    curves: pd.DataFrame, params: dict[str, Any], *, source: str, condition: str
) -> pd.DataFrame:
    """Per seed: the convergence epoch of the configured validation curve, the run's
    ``best_epoch`` (the epoch its ``test_predictions`` come from, as the curves record it) and
    the convergence check of ``val_loss`` (:mod:`soft_label_audit.metrics.convergence`;
    ``val_loss_converged`` 1.0 when converged, else 0.0)."""
    conv = EvaluationConfig.from_params(params).convergence
    rows = []
    for seed, run in curves.sort_values("epoch").groupby("seed", sort=True):
        gain, converged = convergence(run["val_loss"].to_numpy()[None])
        best = run["best_epoch"].unique()
        if len(best) != 1:
            raise ValueError(f"{source}.{condition}.curves seed {seed}: best_epoch {best} varies")
        rows.append(
            {
                "seed": int(seed),
                "convergence_epoch": stability.convergence_epoch(
                    run["epoch"].to_numpy(),
                    run[conv.curve].to_numpy(),
                    conv.fraction,
                    conv.higher_is_better,
                ),
                "best_epoch": int(best[0]),
                "val_loss_gain_last_fifth": float(gain[0]),
                "val_loss_converged": float(converged[0]),
            }
        )
    return pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)


def assemble_run_metrics(
    test_metrics: pd.DataFrame,
    scope_metrics: pd.DataFrame,
    cartography_summary: pd.DataFrame,
    convergence: pd.DataFrame,
) -> pd.DataFrame:
    """One row per seed: run keys, the test metrics (best epoch), the other scopes' label-free
    metrics (``pool__*``, ``final__*``, ``final__pool__*``), then the cartography summary and
    the convergence columns (``best_epoch`` among them)."""
    tables = {
        "test predictions": test_metrics,
        "pool and final predictions": scope_metrics,
        "dynamics": cartography_summary,
        "curves": convergence,
    }
    seeds = {what: sorted(set(t["seed"])) for what, t in tables.items()}
    if len({tuple(s) for s in seeds.values()}) != 1:
        raise ValueError(
            "seeds differ between " + ", ".join(f"{what} {found}" for what, found in seeds.items())
        )
    out = test_metrics.merge(scope_metrics, on="seed", validate="one_to_one")
    out = out.merge(
        cartography_summary.drop(columns=["source", "condition"]), on="seed", validate="one_to_one"
    )
    out = out.merge(convergence, on="seed", validate="one_to_one")
    return out.sort_values("seed", ignore_index=True)


def seed_stability(
    test_predictions: pd.DataFrame,
    curves: pd.DataFrame,
    params: dict[str, Any],
    *,
    source: str,
    condition: str,
) -> pd.DataFrame:
    """One row: disagreement of test predictions between seeds and spread of validation curves."""
    wide = test_predictions.pivot_table(index="item_id", columns="seed", values=list(P_COLS))
    seeds = sorted(test_predictions["seed"].unique())
    if wide.isna().any().any():
        raise ValueError(
            f"{source}.{condition}.test_predictions: seeds did not predict the same items"
        )
    probs = np.stack([wide.xs(s, axis=1, level="seed")[list(P_COLS)].to_numpy() for s in seeds])
    row: dict[str, Any] = {
        "source": source,
        "condition": condition,
        "n_seeds": len(seeds),
        "disagreement": stability.pairwise_disagreement(probs.argmax(axis=2)),
        "pairwise_tv": stability.pairwise_total_variation(probs),
    }
    curve_names = EvaluationConfig.from_params(params).stability_curves
    cols = [c for c in curve_names if c in curves]
    spread = stability.curve_spread(curves, [], cols)
    for c in cols:
        row[f"{c}_std_mean_over_epochs"] = float(spread[f"{c}__std"].mean())
        row[f"{c}_std_last_epoch"] = float(spread[f"{c}__std"].iloc[-1])
    return pd.DataFrame([row])


def run_figures(
    reliability: pd.DataFrame, cartography_table: pd.DataFrame, *, source: str, condition: str
) -> dict[str, Figure]:
    """One overview figure per run for its MLflow child run, named ``seed<n>/run_overview``;
    the tracking hook logs ``seed<n>/...`` into seed n's child run (``soft_label_audit.tracking``)."""
    out: dict[str, Figure] = {}
    for seed, rel in reliability.groupby("seed", sort=True):
        cart = cartography_table[cartography_table["seed"] == seed]
        out[f"seed{int(seed)}/run_overview"] = figures.run_overview(
            rel, cart, f"{source} / {condition} / seed {seed}"
        )
    return out
