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


def make_study(
    grid: StudyGrid = GRID, seeds=(0, 1, 2), n_train=40, n_test=30, epochs=4, rng_seed=0
) -> dict:
    """Every input dataset of the evaluation pipeline for ``grid``, in memory."""
    rng = np.random.default_rng(rng_seed)
    data: dict = {}
    stats, humans = [], []
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
        for c_index, condition in enumerate(grid.conditions):
            prefix = f"{source}.{condition}"
            preds, curves = [], []
            probs = np.empty((len(seeds), epochs, n_train, 10), np.float32)
            for k, seed in enumerate(seeds):
                logits = rng.normal(size=(n_test, 10)) + 3.0 * np.eye(10)[
                    original[n_train:]
                ] * rng.uniform(0.2, 2, (n_test, 1))
                p = _softmax(logits / (1 + c_index))
                preds.append(
                    pd.DataFrame(p, columns=list(P_COLS)).assign(
                        source=source, condition=condition, seed=seed, item_id=test
                    )
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
                        }
                    )
                )
                for e in range(epochs):
                    strength = (e + 1) * rng.uniform(0, 2, (n_train, 1))
                    probs[k, e] = _softmax(
                        rng.normal(size=(n_train, 10)) + strength * np.eye(10)[original[:n_train]]
                    )
            data[f"{prefix}.targets"] = _targets(condition, ids, split, original, h, rng)
            data[f"{prefix}.test_predictions"] = pd.concat(preds, ignore_index=True)[
                ["source", "condition", "seed", "item_id", *P_COLS]
            ]
            data[f"{prefix}.curves"] = pd.concat(curves, ignore_index=True)
            data[f"{prefix}.dynamics"] = {
                "item_ids": train,
                "seeds": np.array(seeds),
                "probs": probs,
            }
    data["item_stats"] = pd.concat(stats, ignore_index=True)
    data["human_soft_labels"] = pd.concat(humans, ignore_index=True)
    data["params:evaluation"] = EVAL_PARAMS
    data["params:labels.none_slot"] = "renormalise"
    data["params:reporting"] = REPORT_PARAMS
    return data
