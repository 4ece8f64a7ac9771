"""A small synthetic study shaped like the training stage's outputs (docs/architecture.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from soft_label_audit.columns import H_COLS, P_COLS, T_COLS
from soft_label_audit.grid import StudyGrid
from soft_label_audit.human_labels import human_digits, human_entropy
from soft_label_audit.parameter_tree import base_block

#: conf/base's evaluation block with no burn-in (4 epochs) and two stability curves
EVAL_PARAMS = {
    **base_block("evaluation"),
    "cartography": {
        "burn_in_fraction": 0.0,
        "easy_min_confidence": 0.5,
        "ambiguous_min_variability": 0.2,
    },
    "stability_curves": ["val_loss", "val_acc"],
}
REPORT_PARAMS = {
    "baselines": ["original_hard", "human_soft"],
    "confidence": 0.95,
    "cartography_reference": "original",
}
GRID = StudyGrid(("mnist", "synthetic"), ("original_hard", "human_soft", "machine_soft"))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _targets(condition, ids, split, original, h, rng) -> pd.DataFrame:
    """A condition's targets table: one-hot of the original label, the human label over the
    digits (``human_soft``) or a random soft label (any other condition)."""
    if condition == "original_hard":
        t = np.eye(10)[original]
    elif condition == "human_soft":
        t = human_digits(h, "renormalise")
    else:
        t = rng.dirichlet(np.full(10, 0.5), len(ids))
    return pd.DataFrame(t, columns=list(T_COLS)).assign(item_id=ids, split=split)[
        ["item_id", "split", *T_COLS]
    ]


def _noisy_probs(rng, labels: np.ndarray, c_index: int) -> np.ndarray:
    logits = rng.normal(size=(len(labels), 10)) + 3.0 * np.eye(10)[labels] * rng.uniform(
        0.2, 2, (len(labels), 1)
    )
    return _softmax(logits / (1 + c_index))


def _predictions(probs, source, condition, seed, item_ids) -> pd.DataFrame:
    frame = pd.DataFrame(probs, columns=list(P_COLS)).assign(
        source=source, condition=condition, seed=seed, item_id=item_ids
    )
    return frame[["source", "condition", "seed", "item_id", *P_COLS]]


def make_study(
    grid: StudyGrid = GRID,
    seeds=(0, 1, 2),
    n_train=40,
    n_test=30,
    epochs=4,
    rng_seed=0,
    n_pool=None,
) -> dict:
    """Every input dataset of the evaluation pipeline for ``grid``, in memory. ``n_pool``: pool
    items per source (default: 50 for the first source, none for the others)."""
    rng = np.random.default_rng(rng_seed)
    # the pool's own stream, so that the other tables are those of a study without a pool
    pool_rng = np.random.default_rng([rng_seed, 1])
    data: dict = {}
    stats, humans, pools = [], [], []
    for s_index, source in enumerate(grid.sources):
        n = n_train + n_test
        ids = np.arange(n) + 100_000 * s_index
        original = rng.integers(0, 10, n)
        votes = rng.dirichlet(np.full(11, 0.3), n) * rng.uniform(0, 1, (n, 1))
        h = votes + np.eye(11)[original] * (1 - votes.sum(axis=1, keepdims=True))
        h[: n // 4] = np.eye(11)[original[: n // 4]]  # unanimous items
        mode = h[:, :10].argmax(axis=1)
        entropy = human_entropy(h, "renormalise")  # the entropy of the human_soft target
        split = np.array(["train"] * n_train + ["test"] * n_test)
        stats.append(
            pd.DataFrame(
                {
                    "item_id": ids,
                    "source": source,
                    "split": split,
                    "original_label": original,
                    "human_entropy": entropy,
                    "human_mode": mode,
                    "mode_shift": mode != original,
                }
            )
        )
        humans.append(
            pd.DataFrame(h, columns=list(H_COLS)).assign(item_id=ids, aggregation="majority")
        )
        train, test = ids[:n_train], ids[n_train:]
        pool_n = (50 if s_index == 0 else 0) if n_pool is None else n_pool
        pool_ids = np.arange(pool_n) + 100_000 * s_index + 50_000
        pool_original = pool_rng.integers(0, 10, pool_n)
        pools.append(
            pd.DataFrame(
                {"item_id": pool_ids, "source": source, "original_label": pool_original}
            ).assign(image=[bytes(784)] * pool_n)
        )
        for c_index, condition in enumerate(grid.conditions):
            prefix = f"{source}.{condition}"
            preds, curves, pool_preds, final = [], [], [], []
            probs = np.empty((len(seeds), epochs, n_train, 10), np.float32)
            for k, seed in enumerate(seeds):
                p = _noisy_probs(rng, original[n_train:], c_index)
                preds.append(_predictions(p, source, condition, seed, test))
                pool_p = _noisy_probs(pool_rng, pool_original, c_index)
                pool_preds.append(_predictions(pool_p, source, condition, seed, pool_ids))
                # the final epoch: sharper (overconfident) than the best one
                for scope, scoped, items in (("test", p, test), ("pool", pool_p, pool_ids)):
                    sharp = _softmax(2.0 * np.log(np.maximum(scoped, 1e-12)))
                    final.append(
                        _predictions(sharp, source, condition, seed, items).assign(scope=scope)
                    )
                loss = 2.0 * np.exp(-np.arange(epochs) / (1 + k)) + 0.1 * rng.random(epochs)
                curves.append(
                    pd.DataFrame(
                        {
                            "source": source,
                            "condition": condition,
                            "seed": seed,
                            "epoch": np.arange(1, epochs + 1),
                            "train_loss": loss * 0.9,
                            "train_acc": 1 - loss / 3,
                            "val_loss": loss,
                            "val_acc": 1 - loss / 2.5,
                            "best_epoch": int(np.argmin(loss)) + 1,
                        }
                    )
                )
                for e in range(epochs):
                    strength = (e + 1) * rng.uniform(0, 2, (n_train, 1))
                    probs[k, e] = _softmax(
                        rng.normal(size=(n_train, 10)) + strength * np.eye(10)[original[:n_train]]
                    )
            # targets from a stream of their own: the other tables' draws stay as they were
            targets_rng = np.random.default_rng([rng_seed, s_index, c_index])
            data[f"{prefix}.targets"] = _targets(condition, ids, split, original, h, targets_rng)
            data[f"{prefix}.test_predictions"] = pd.concat(preds, ignore_index=True)
            data[f"{prefix}.pool_predictions"] = pd.concat(pool_preds, ignore_index=True)
            data[f"{prefix}.final_predictions"] = pd.concat(final, ignore_index=True)[
                ["source", "condition", "seed", "scope", "item_id", *P_COLS]
            ]
            data[f"{prefix}.curves"] = pd.concat(curves, ignore_index=True)
            data[f"{prefix}.dynamics"] = {
                "item_ids": train,
                "seeds": np.array(seeds),
                "probs": probs,
            }
    data["item_stats"] = pd.concat(stats, ignore_index=True)
    data["pool_digits"] = pd.concat(pools, ignore_index=True)
    data["human_soft_labels"] = pd.concat(humans, ignore_index=True)
    data["params:evaluation"] = EVAL_PARAMS
    data["params:labels.none_slot"] = "renormalise"
    data["params:reporting"] = REPORT_PARAMS
    return data
