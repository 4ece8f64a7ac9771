"""The table contracts (soft_label_audit.contracts) and the hook that checks them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from soft_label_audit import contracts
from soft_label_audit.columns import H_COLS, P_COLS, T_COLS
from soft_label_audit.contract_hook import TableContractHook
from soft_label_audit.contracts import ContractError, check_table
from soft_label_audit.data_sources.tables import images_to_column

N = 6
SPLIT = ["train", "train", "val", "val", "test", "test"]


def _digits() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
    return pd.DataFrame(
        {
            "item_id": np.array([0, 1, 60_000, 69_999, 100_000, 100_001], np.int64),
            "source": ["mnist"] * 4 + ["synthetic"] * 2,
            "original_label": np.array([5, 0, 7, 6, 4, 9], np.int64),
            "image": images_to_column(images),
            "machine_soft_label": [None] * 4
            + [[0.0] * 4 + [0.6] + [0.0] * 4 + [0.4], [0.0] * 9 + [1.0]],
            "class_a": np.array([-1, -1, -1, -1, 4, 4], np.int64),
            "class_b": np.array([-1, -1, -1, -1, 9, 9], np.int64),
            "mix_weight": [np.nan] * 4 + [0.4, 1.0],
        }
    )


def _pool_digits() -> pd.DataFrame:
    """Two MNIST training images and two blends with ids of their own and their parents."""
    table = _digits().drop(index=[2, 3]).reset_index(drop=True)
    table["item_id"] = np.array([10, 11, 150_000, 150_001], np.int64)
    table["parent_a"] = np.array([-1, -1, 20, 21], np.int64)
    table["parent_b"] = np.array([-1, -1, 30, 31], np.int64)
    return table


def _study_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": np.array([3, 8, 12, 40, 100_000, 100_001], np.int64),
            "source": ["mnist"] * 4 + ["synthetic"] * 2,
            "split": SPLIT,
            "original_label": np.array([1, 1, 3, 2, 4, 9], np.int64),
        }
    )


def _study_digits() -> pd.DataFrame:
    table = _study_items()
    table["image"] = _digits()["image"]
    table["machine_soft_label"] = _digits()["machine_soft_label"]
    return table.assign(annotation_source="simulated")


def _votes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": np.array([3, 3, 8, 8, 12, 12], np.int64),
            "annotator_id": ["a0", "a1", "a0", "a1", "a0", "a1"],
            "choice": ["1", "7", "1", "none", "3", "3"],
            "unsure": [False, True, False, False, True, False],
            "response_time": [1.2, 3.4, np.nan, 0.8, 2.0, 1.0],
        }
    )


def _human(rule: str = "majority_share") -> pd.DataFrame:
    h = np.zeros((N, 11))
    h[np.arange(N), [1, 1, 3, 2, 4, 9]] = 0.5
    h[:, 10] = 0.25
    h[np.arange(N), [7, 7, 5, 7, 9, 4]] += 0.25
    table = pd.DataFrame(h, columns=list(H_COLS))
    table.insert(0, "item_id", _study_items()["item_id"])
    return table.assign(aggregation=rule, annotation_source="simulated")


def _item_stats() -> pd.DataFrame:
    table = _study_items()
    table["n_votes"] = pd.array([2, 2, 2, None, 3, 3], dtype="Int64")
    table["human_entropy"] = [0.0, 1.04, math.log(11), 0.5, 0.2, 0.7]
    table["pct_unsure"] = [0.0, 0.5, 1.0, np.nan, 0.0, 1 / 3]
    table["human_mode"] = np.array([1, 7, 3, 2, 4, 4], np.int64)
    table["mode_shift"] = table["human_mode"] != table["original_label"]
    return table.assign(annotation_source="simulated", mode_unsupported=False)


def _targets() -> pd.DataFrame:
    t = np.full((N, 10), 0.01)
    t[np.arange(N), [1, 1, 3, 2, 4, 9]] = 0.91
    table = pd.DataFrame(t, columns=list(T_COLS))
    table.insert(0, "split", SPLIT)
    table.insert(0, "item_id", _study_items()["item_id"])
    return table


def _test_predictions() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(10), 4).astype(np.float32).astype(np.float64)
    table = pd.DataFrame(p, columns=list(P_COLS))
    table.insert(0, "item_id", np.array([40, 41, 40, 41], np.int64))
    table.insert(0, "seed", np.array([0, 0, 1, 1], np.int64))
    table.insert(0, "condition", "human_soft")
    table.insert(0, "source", "mnist")
    return table


def _final_predictions() -> pd.DataFrame:
    test = _test_predictions().assign(scope="test")
    pool = _test_predictions().assign(scope="pool", item_id=np.array([9, 10, 9, 10], np.int64))
    table = pd.concat([test, pool], ignore_index=True)
    return table[["source", "condition", "seed", "scope", "item_id", *P_COLS]]


def _curves() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": "mnist",
            "condition": "human_soft",
            "seed": np.array([0, 0, 1, 1], np.int64),
            "epoch": np.array([1, 2, 1, 2], np.int64),
            "train_loss": [2.3, 1.1, 2.2, 1.0],
            "train_acc": [0.1, 0.6, 0.12, 0.7],
            "val_loss": [2.2, 1.3, 2.1, 1.2],
            "val_acc": [0.2, 0.5, 0.25, 0.55],
            "lr": [0.01, 0.01, 0.01, 0.01],
            "best_epoch": np.array([2, 2, 2, 2], np.int64),
            "val_loss_gain_last_fifth": [0.9, 0.9, 0.9, 0.9],
            "val_loss_converged": [False] * 4,
            "temperature_best": [1.4, 1.4, 1.6, 1.6],
            "temperature_final": [1.5, 1.5, 1.7, 1.7],
        }
    )


def _metrics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": "mnist",
            "condition": "human_soft",
            "seed": np.array([0, 1], np.int64),
            "accuracy_original": [0.91, 0.9],
            "ece_top_label": [0.04, np.nan],
            "convergence_epoch": np.array([3, 4], np.int64),
        }
    )


VALID = {
    "digits": _digits,
    "pool_digits": _pool_digits,
    "study_items": _study_items,
    "study_digits": _study_digits,
    "raw_annotations": _votes,
    "validated_annotations": lambda: _votes().assign(annotation_source="raw_file"),
    "human_soft_labels_by_rule": lambda: pd.concat(
        [_human("majority_share"), _human("dawid_skene")]
    ),
    "human_soft_labels": _human,
    "item_stats": _item_stats,
    "mnist.human_soft.targets": _targets,
    "mnist.human_soft.test_predictions": _test_predictions,
    "mnist.human_soft.pool_predictions": _test_predictions,
    "mnist.human_soft.final_predictions": _final_predictions,
    "mnist.human_soft.curves": _curves,
    "mnist.human_soft.metrics": _metrics,
}


def _refused(name: str, table: pd.DataFrame, *words: str) -> str:
    with pytest.raises(ContractError) as info:
        check_table(name, table)
    message = str(info.value)
    assert f"Table {name!r}" in message
    for word in words:
        assert word in message, message
    return message


def test_every_table_of_the_architecture_has_a_contract():
    namespaced = {n.split(".")[-1] for n in VALID if n.startswith("mnist.")}
    assert namespaced == set(contracts.NAMESPACED_TABLES)
    assert {n for n in VALID if "." not in n} | {
        f"{{source}}.{{condition}}.{t}" for t in namespaced
    } == set(contracts.TABLES)


@pytest.mark.parametrize("name", list(VALID))
def test_a_valid_table_passes(name):
    check_table(name, VALID[name]())


def test_extra_columns_are_allowed_and_other_datasets_pass_untouched():
    check_table("item_stats", _item_stats().assign(something_new=1.5))
    check_table("annotator_stats", pd.DataFrame({"item_id": [1, 1]}))
    check_table("mnist.human_soft.dynamics", {"probs": None})
    assert contracts.schema_for("mnist.human_soft.weights") is None


@pytest.mark.parametrize("name", list(VALID))
def test_a_missing_column_is_refused(name):
    table = VALID[name]()
    column = "seed" if "seed" in table else "item_id"
    _refused(name, table.drop(columns=column), "required column present", column)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("digits", "item_id"),
        ("pool_digits", "item_id"),
        ("study_items", "item_id"),
        ("study_digits", "item_id"),
        ("raw_annotations", "(item_id, annotator_id)"),
        ("validated_annotations", "(item_id, annotator_id)"),
        ("human_soft_labels_by_rule", "(item_id, aggregation)"),
        ("human_soft_labels", "item_id"),
        ("item_stats", "item_id"),
        ("mnist.human_soft.targets", "item_id"),
        ("mnist.human_soft.test_predictions", "(seed, item_id)"),
        ("mnist.human_soft.curves", "(seed, epoch)"),
        ("mnist.human_soft.metrics", "seed"),
    ],
)
def test_a_repeated_key_is_refused(name, keys):
    table = VALID[name]()
    doubled = pd.concat([table, table.iloc[[1]]], ignore_index=True)
    message = _refused(name, doubled, f"one row per {keys}", "2 offending row(s)")
    assert "first 2:" in message


@pytest.mark.parametrize(
    ("name", "columns", "block"),
    [
        ("human_soft_labels", H_COLS, "h_0..h_none sum to 1"),
        ("human_soft_labels_by_rule", H_COLS, "h_0..h_none sum to 1"),
        ("mnist.human_soft.targets", T_COLS, "t_0..t_9 sum to 1"),
        ("mnist.human_soft.test_predictions", P_COLS, "p_0..p_9 sum to 1"),
    ],
)
def test_probabilities_that_do_not_sum_to_one_are_refused(name, columns, block):
    table = VALID[name]().reset_index(drop=True)
    table.loc[2, columns[0]] += 0.05
    message = _refused(name, table, block, "1 offending row(s)")
    assert "each in [0, 1]" not in message
    table.loc[3, columns[1]] = np.nan
    _refused(name, table, block, "each in [0, 1], none missing", "2 offending row(s)")


def test_predictions_allow_float32_rounding_but_not_more():
    table = _test_predictions()
    table.loc[0, "p_0"] += 5e-5
    check_table("mnist.human_soft.test_predictions", table)
    table.loc[0, "p_0"] += 1e-3
    _refused("mnist.human_soft.test_predictions", table, "p_0..p_9 sum to 1 (within 0.0001)")


@pytest.mark.parametrize(
    ("name", "column", "value", "rule"),
    [
        ("digits", "original_label", 10, "column 'original_label': in [0, 9]"),
        ("digits", "item_id", 70_000, "an mnist item_id is in 0..69999"),
        ("digits", "source", "emnist", "one of mnist, synthetic"),
        ("pool_digits", "item_id", 60_000, "an mnist item_id is a training image, 0..59999"),
        ("pool_digits", "parent_a", 60_000, "column 'parent_a': in [-1, 59999]"),
        ("study_items", "split", "holdout", "one of train, val, test"),
        ("study_digits", "annotation_source", "crowd", "one of simulated, released, raw_file"),
        ("raw_annotations", "choice", "11", "one of 0, 1, 2"),
        ("raw_annotations", "response_time", -1.0, ">= 0"),
        ("validated_annotations", "annotator_id", " ", "non-empty"),
        ("human_soft_labels", "h_3", 1.5, "each in [0, 1]"),
        ("item_stats", "human_entropy", 2.5, "column 'human_entropy': in [0, 2.3979]"),
        ("item_stats", "pct_unsure", 1.2, "column 'pct_unsure': in [0, 1]"),
        ("item_stats", "n_votes", 0, "column 'n_votes': >= 1"),
        ("item_stats", "human_mode", -1, "column 'human_mode': in [0, 9]"),
        ("mnist.human_soft.targets", "t_0", -0.2, "each in [0, 1]"),
        ("mnist.human_soft.test_predictions", "seed", -1, "column 'seed': >= 0"),
        ("mnist.human_soft.curves", "epoch", 0, "column 'epoch': >= 1"),
        ("mnist.human_soft.curves", "val_acc", 1.5, "column 'val_acc': in [0, 1]"),
        ("mnist.human_soft.curves", "train_loss", np.nan, "column 'train_loss': no missing values"),
    ],
)
def test_a_value_out_of_range_is_refused(name, column, value, rule):
    table = VALID[name]().reset_index(drop=True)
    table[column] = table[column].astype(object) if isinstance(value, str) else table[column]
    table.loc[1, column] = value
    message = _refused(name, table, rule, "1 offending row(s)")
    # the offending row is shown under the rule
    assert str(table.loc[1, "item_id" if "item_id" in table else "epoch"]) in message.split(rule)[1]


def test_digits_images_and_machine_labels_are_checked_cell_by_cell():
    table = _digits()
    table.loc[0, "image"] = b"\x00" * 783
    message = _refused("digits", table, "column 'image': 784 bytes (28x28 uint8)", "<783 bytes>")
    assert "\\x00" not in message  # image cells are shortened, not dumped
    table = _digits()
    table.at[4, "machine_soft_label"] = [0.5] * 10
    _refused("digits", table, "column 'machine_soft_label': 10 non-negative floats summing to 1")
    table = _digits()
    table.at[5, "machine_soft_label"] = None
    _refused("digits", table, "a synthetic item carries a machine_soft_label", "100001")


def test_pool_blends_have_ids_above_mnist_and_a_machine_label():
    _refused("pool_digits", _pool_digits().drop(columns="parent_b"), "missing parent_b")
    table = _pool_digits()
    table.loc[3, "item_id"] = 69_999
    _refused("pool_digits", table, "a synthetic item_id is >= 70000", "69999")
    table = _pool_digits()
    table.at[2, "machine_soft_label"] = None
    _refused("pool_digits", table, "a synthetic item carries a machine_soft_label", "150000")


def test_wrong_dtypes_and_rules_across_columns_are_refused():
    stats = _item_stats().assign(item_id=lambda t: t["item_id"].astype(float))
    _refused("item_stats", stats, "column 'item_id': rule 'dtype is integer' (found dtype float64)")
    stats = _item_stats()
    stats.loc[0, "mode_shift"] = True  # human_mode == original_label on row 0
    _refused("item_stats", stats, "mode_shift only where human_mode != original_label")
    labels = pd.concat(
        [_human("majority_share"), _human("dawid_skene").iloc[[0]].assign(item_id=99)]
    )
    _refused("human_soft_labels", labels, "one aggregation per table")
    metrics = _metrics().assign(note="first try")
    _refused(
        "mnist.human_soft.metrics", metrics, "every column besides source, condition is numeric"
    )


def test_a_namespaced_table_must_belong_to_its_namespace():
    predictions = _test_predictions()
    check_table("mnist.human_soft.test_predictions", predictions)
    _refused(
        "synthetic.human_soft.test_predictions",
        predictions,
        "equals 'synthetic' (the dataset's namespace)",
    )
    _refused("mnist.original_hard.curves", _curves(), "column 'condition': equals 'original_hard'")
    # the schema without a namespace accepts any source and condition
    check_table("test_predictions", predictions.assign(source="synthetic"))


def test_a_non_table_under_a_contracted_name_is_refused():
    with pytest.raises(ContractError, match="'item_stats' must be a pandas DataFrame"):
        check_table("item_stats", {"item_id": [1]})


def test_the_contract_prints_from_the_command_line(capsys):
    assert contracts.main(["item_stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("item_stats: ")
    assert "  mode_shift: dtype is bool" in out and "  one row per item_id" in out
    assert contracts.main([]) == 0
    assert "{source}.{condition}.test_predictions" in capsys.readouterr().out
    assert contracts.main(["annotator_stats"]) == 2


# ---------------------------------------------------------------- the hook


def test_the_hook_checks_on_save_and_on_load_by_dataset_name():
    bad = pd.concat([_targets(), _targets().iloc[[0]]], ignore_index=True)
    for call in ("before_dataset_saved", "after_dataset_loaded"):
        hook = TableContractHook()
        with pytest.raises(
            ContractError, match="(?s)'mnist.human_soft.targets'.*one row per item_id"
        ):
            getattr(hook, call)(dataset_name="mnist.human_soft.targets", data=bad, node=None)
        getattr(hook, call)(dataset_name="mnist.human_soft.targets", data=_targets(), node=None)
        getattr(hook, call)(dataset_name="teacher_logits", data=bad, node=None)


def test_the_hook_checks_a_table_once_per_run_on_the_way_in():
    hook = TableContractHook()
    bad = _item_stats().assign(pct_unsure=2.0)
    hook.before_dataset_saved(dataset_name="item_stats", data=_item_stats(), node=None)
    # the run wrote and checked this table: later loads read that same file
    hook.after_dataset_loaded(dataset_name="item_stats", data=bad, node=None)
    with pytest.raises(ContractError):  # every save is checked
        hook.before_dataset_saved(dataset_name="item_stats", data=bad, node=None)
    # a new run checks its first load again
    hook.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    with pytest.raises(ContractError):
        hook.after_dataset_loaded(dataset_name="item_stats", data=bad, node=None)


def _project_hook_manager():
    """A hook manager with the hook specs of a Kedro session and the project's own hooks
    (``settings.HOOKS``, as registered there; plugins' entry points left out)."""
    import pluggy
    from kedro.framework.hooks import specs
    from kedro.framework.hooks.markers import HOOK_NAMESPACE

    from soft_label_audit import settings

    manager = pluggy.PluginManager(HOOK_NAMESPACE)
    for spec in (
        specs.DataCatalogSpecs,
        specs.NodeSpecs,
        specs.PipelineSpecs,
        specs.DatasetSpecs,
        specs.KedroContextSpecs,
    ):
        manager.add_hookspecs(spec)
    for hook in settings.HOOKS:
        manager.register(hook)
    return manager


def test_the_projects_hooks_stop_a_run_at_a_broken_table_and_let_a_good_one_through():
    """The hooks the project registers, in a pipeline run: a node's output that breaks its
    contract stops the run before it is saved or read, naming the dataset and the rule."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    saved: dict[str, list] = {"item_stats": [], "copy": []}

    class Recording(MemoryDataset):
        def __init__(self, name: str):
            super().__init__()
            self._name = name

        def save(self, data):
            saved[self._name].append(data)
            super().save(data)

    def set_unsure(stats: pd.DataFrame, share: float) -> pd.DataFrame:
        return stats.assign(pct_unsure=share)

    flow = pipeline(
        [
            node(
                func=set_unsure,
                inputs=["study_table", "params:share"],
                outputs="item_stats",
                name="set_unsure",
            ),
            node(func=lambda t: t.copy(), inputs="item_stats", outputs="copy", name="copy_stats"),
        ]
    )

    def run(share: float) -> None:
        catalog = DataCatalog(
            {
                "study_table": MemoryDataset(_item_stats()),
                "params:share": MemoryDataset(share),
                "item_stats": Recording("item_stats"),
                "copy": Recording("copy"),
            }
        )
        SequentialRunner().run(flow, catalog, hook_manager=_project_hook_manager())

    with pytest.raises(ContractError) as info:
        run(1.5)
    message = str(info.value)
    assert "Table 'item_stats'" in message
    assert "column 'pct_unsure': in [0, 1]" in message and "6 offending row(s)" in message
    assert saved == {"item_stats": [], "copy": []}  # not written, and the next node never ran

    run(0.25)
    assert len(saved["item_stats"]) == len(saved["copy"]) == 1
    pd.testing.assert_frame_equal(saved["copy"][0], _item_stats().assign(pct_unsure=0.25))


def test_a_kedro_run_stops_before_saving_a_table_that_breaks_its_contract():
    import pluggy
    from kedro.framework.hooks import specs
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    manager = pluggy.PluginManager("kedro")
    for spec in (specs.NodeSpecs, specs.PipelineSpecs, specs.DatasetSpecs):
        manager.add_hookspecs(spec)
    manager.register(TableContractHook())

    saved = []

    class Recording(MemoryDataset):
        def save(self, data):
            saved.append(data)
            super().save(data)

    def break_stats(stats: pd.DataFrame) -> pd.DataFrame:
        return stats.assign(pct_unsure=2.0)

    flow = pipeline(
        [node(break_stats, inputs="study_table", outputs="item_stats", name="break_stats")]
    )
    catalog = DataCatalog({"study_table": MemoryDataset(_item_stats()), "item_stats": Recording()})
    with pytest.raises(ContractError, match=r"(?s)'item_stats'.*column 'pct_unsure': in \[0, 1\]"):
        SequentialRunner().run(flow, catalog, hook_manager=manager)
    assert saved == []

    # a valid table flows through, and a loaded table is checked too
    flow = pipeline([node(lambda t: t, inputs="item_stats", outputs="copy", name="copy_stats")])
    catalog = DataCatalog(
        {"item_stats": MemoryDataset(break_stats(_item_stats())), "copy": MemoryDataset()}
    )
    with pytest.raises(ContractError, match="'item_stats'"):
        SequentialRunner().run(flow, catalog, hook_manager=manager)
    catalog = DataCatalog({"item_stats": MemoryDataset(_item_stats()), "copy": MemoryDataset()})
    SequentialRunner().run(flow, catalog, hook_manager=manager)


def test_final_predictions_name_their_scope_once_per_seed_and_item():
    table = _final_predictions()
    check_table("mnist.human_soft.final_predictions", table)
    _refused("mnist.human_soft.final_predictions", table.assign(scope="val"), "scope")
    # the same item may be a test item and a pool item only in different scopes
    twice = pd.concat([table, table.iloc[:1]], ignore_index=True)
    _refused("mnist.human_soft.final_predictions", twice, "(scope, seed, item_id)")
    # an empty pool leaves an empty pool_predictions table, which is valid
    check_table("mnist.human_soft.pool_predictions", _test_predictions().iloc[:0])


def test_curves_name_each_runs_best_epoch():
    _refused("mnist.human_soft.curves", _curves().assign(best_epoch=0), "column 'best_epoch': >= 1")
    _refused("mnist.human_soft.curves", _curves().drop(columns="best_epoch"), "best_epoch")
