"""A post-hoc condition trains nothing: its cell is one node that rescales its base condition's
runs by the temperature each fitted on its validation items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soft_label_audit import run_tables
from soft_label_audit.columns import P_COLS
from soft_label_audit.contracts import check_table
from soft_label_audit.grid import StudyGrid
from soft_label_audit.metrics.temperature import fit_temperature
from soft_label_audit.pipelines.training import create_pipeline
from soft_label_audit.pipelines.training.nodes import attach_temperatures, scale_temperature
from soft_label_audit.pipelines.training.pipeline import OUTPUTS
from soft_label_audit.targets import BUILDERS
from soft_label_audit.trainer import CURVE_NAMES

POST_HOC = "original_hard_temperature_scaled"
SEEDS = [0, 1]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_the_post_hoc_cell_reads_its_base_and_trains_nothing():
    assert BUILDERS[POST_HOC].post_hoc_of == "original_hard"
    grid = StudyGrid(("mnist",), ("original_hard", POST_HOC))
    nodes = {n.name: n for n in create_pipeline(grid=grid).nodes}
    scale = nodes[f"mnist.{POST_HOC}.scale_temperature"]
    attach = nodes[f"mnist.{POST_HOC}.attach_temperatures"]
    assert scale.inputs == [f"mnist.original_hard.{name}" for name in OUTPUTS[:-1]]
    assert scale.outputs == [f"mnist.{POST_HOC}.{name}" for name in OUTPUTS[:-1]]
    assert attach.inputs == ["mnist.original_hard.weights", f"mnist.{POST_HOC}.curves"]
    assert attach.outputs == [f"mnist.{POST_HOC}.weights"]
    assert scale.tags == attach.tags == {POST_HOC}
    assert not any(name.startswith(f"mnist.{POST_HOC}.train") for name in nodes)


@pytest.fixture(scope="module")
def base():
    """original_hard's six outputs for two seeds, as the training node packs them: test, pool
    and validation logits at the best and final epoch, temperatures fitted on the latter."""
    rng = np.random.default_rng(0)
    n_test, n_pool, n_val, epochs = 12, 8, 40, 3
    test = pd.DataFrame({"item_id": np.arange(n_test) + 100})
    pool = pd.DataFrame({"item_id": np.arange(n_pool) + 500})
    val_labels = rng.integers(0, 10, n_val)

    def logits(n: int) -> np.ndarray:  # overconfident: scaled up logits
        return 2.5 * rng.normal(size=(len(SEEDS), n, 10))

    val_best, val_final = logits(n_val), logits(n_val)
    val_best[:, np.arange(n_val), val_labels] += 3
    val_final[:, np.arange(n_val), val_labels] += 3
    z = {k: logits(n) for k, n in (("test", n_test), ("pool", n_pool))}
    z_final = {k: logits(n) for k, n in (("test", n_test), ("pool", n_pool))}
    temperatures = tuple(run_tables.run_temperatures(v, val_labels) for v in (val_best, val_final))
    curves_by_name = {name: rng.uniform(0.1, 1, (len(SEEDS), epochs)) for name in CURVE_NAMES}
    args = (SEEDS, "mnist", "original_hard")
    tables = (
        run_tables.prediction_table(_softmax(z["test"]), test, *args),
        run_tables.prediction_table(_softmax(z["pool"]), pool, *args),
        run_tables.final_prediction_table(
            _softmax(z_final["test"]), test, _softmax(z_final["pool"]), pool, *args
        ),
        run_tables.curve_table(curves_by_name, *args, np.array([2, 3]), temperatures),
        {"item_ids": np.arange(5), "seeds": np.array(SEEDS), "probs": np.zeros((2, 3, 5, 10))},
        {"model": {"hidden": 4}, "seeds": SEEDS, "state_dicts": [{"w": np.ones(2)}] * 2},
    )
    return {
        "tables": tables,
        "logits": (z, z_final),
        "temperatures": temperatures,
        "val": (val_best, val_final, val_labels),
    }


def test_the_post_hoc_tables_scale_each_run_by_its_temperature(base):
    out = scale_temperature(*base["tables"][:5], source="mnist", condition=POST_HOC)
    test, pool, final, curves, dynamics = out
    weights = attach_temperatures(base["tables"][5], curves, source="mnist", condition=POST_HOC)
    (z, z_final), (t_best, t_final) = base["logits"], base["temperatures"]
    val_best, val_final, val_labels = base["val"]
    # the temperatures are the fits on each run's validation logits; overconfident, so T > 1
    for k in range(len(SEEDS)):
        assert t_best[k] == fit_temperature(val_best[k], val_labels) and t_best[k] > 1
        assert t_final[k] == fit_temperature(val_final[k], val_labels)
    for k, seed in enumerate(SEEDS):
        for table, logits, t in ((test, z["test"], t_best), (pool, z["pool"], t_best)):
            rows = table[table["seed"] == seed]
            np.testing.assert_allclose(rows[list(P_COLS)], _softmax(logits[k] / t[k]), atol=1e-9)
        for scope in ("test", "pool"):
            rows = final[(final["seed"] == seed) & (final["scope"] == scope)]
            expected = _softmax(z_final[scope][k] / t_final[k])
            np.testing.assert_allclose(rows[list(P_COLS)], expected, atol=1e-9)
    for table, name in zip((test, pool, final), OUTPUTS, strict=False):
        assert set(table["condition"]) == {POST_HOC}
        check_table(f"mnist.{POST_HOC}.{name}", table)
    # the training is the base's: curves (renamed) and dynamics copied, the base untouched
    base_curves = base["tables"][3]
    assert set(curves["condition"]) == {POST_HOC} and set(base_curves["condition"]) == {
        "original_hard"
    }
    pd.testing.assert_frame_equal(
        curves.drop(columns="condition"), base_curves.drop(columns="condition")
    )
    check_table(f"mnist.{POST_HOC}.curves", curves)
    assert dynamics["probs"] is base["tables"][4]["probs"]
    assert weights["state_dicts"] is base["tables"][5]["state_dicts"]
    assert weights["temperature_best"] == list(t_best)
    assert weights["temperature_final"] == list(t_final)
    assert "temperature_best" not in base["tables"][5]


def test_runs_without_a_temperature_are_refused(base):
    curves = base["tables"][3].assign(temperature_best=np.nan)
    tables = (*base["tables"][:3], curves, base["tables"][4])
    with pytest.raises(ValueError, match="no single positive temperature_best"):
        scale_temperature(*tables, source="mnist", condition=POST_HOC)
    with pytest.raises(ValueError, match="no single positive temperature_best"):
        attach_temperatures(base["tables"][5], curves, source="mnist", condition=POST_HOC)
