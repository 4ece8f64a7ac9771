"""The `labels` pipeline in memory on small study tables: wiring, contracts, the teacher."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit import targets as tg
from soft_label_audit.columns import H_COLS, T_COLS
from soft_label_audit.grid import StudyGrid
from soft_label_audit.parameter_tree import base_block
from soft_label_audit.pipelines.labels import create_pipeline, nodes
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, run_in_memory
from tests.pipelines.labels.study_tables import N_POOL, small_study

CONDITIONS = tuple(tg.BUILDERS)
GRID = StudyGrid(("mnist", "synthetic"), CONDITIONS)


@pytest.fixture(scope="module")
def tables(mnist_arrays):
    return small_study(mnist_arrays)


@pytest.fixture(scope="module")
def test_params():
    return dict(config_loader(PROJECT_ROOT, "test")["parameters"])


@pytest.fixture(scope="module")
def labels_params(test_params):
    return test_params["labels"]


@pytest.fixture(scope="module")
def training_params(test_params):
    return test_params["training"]


def _params(name: str, value) -> dict:
    """Kedro's ``params:`` feed: the block and every nested key."""
    out = {f"params:{name}": value}
    if isinstance(value, dict):
        for key, inner in value.items():
            out |= _params(f"{name}.{key}", inner)
    return out


MODE_SUPPORT = {"min_vote_share": 0.5, "min_sure_votes": 3}


@pytest.fixture(scope="module")
def outputs(tables, labels_params, training_params):
    inputs = {
        "params:training": training_params,
        **tables,
        **_params("labels", labels_params),
        **_params(
            "annotation",
            {"mode_support": MODE_SUPPORT, "dawid_skene": base_block("annotation.dawid_skene")},
        ),
    }
    return run_in_memory(create_pipeline(grid=GRID), inputs)


def test_one_namespace_per_source_and_condition():
    pipe = create_pipeline(grid=GRID)
    namespaces = {n.namespace for n in pipe.nodes}
    # each condition in its namespace, each source's summary in the source's, the shared nodes
    # in the labels box and the stacked summary in the reporting box
    assert namespaces == {f"{s}.{c}" for s, c in GRID.namespaces()} | set(GRID.sources) | {
        "labels",
        "reporting",
    }
    assert {
        "study_digits",
        "human_soft_labels",
        "item_stats",
        "digits",
        "pool_digits",
        "human_soft_labels_by_rule",
        "validated_annotations",
        "params:labels.none_slot",
        "params:labels.teacher",
        "params:labels.large_teacher",
        "params:training",
        "params:annotation.mode_support",
        "params:annotation.dawid_skene",
        *(f"params:labels.conditions.{c}" for c in CONDITIONS),
    } == pipe.inputs()
    # only the machine_soft conditions read a teacher; only the conditions that place the
    # human mode (human_mode_hard, human_soft, and human_soft_mode_aligned, which moves it
    # back to o) read item_stats
    readers = {n.namespace for n in pipe.nodes if "teacher_logits" in n.inputs}
    assert readers == {f"{s}.machine_soft" for s in GRID.sources}
    readers = {n.namespace for n in pipe.nodes if "large_teacher_logits" in n.inputs}
    assert readers == {f"{s}.machine_soft_large_teacher" for s in GRID.sources}
    assert {n.namespace for n in pipe.nodes if "item_stats" in n.inputs} == {
        f"{s}.{c}"
        for s in GRID.sources
        for c in ("human_mode_hard", "human_soft", "human_soft_mode_aligned")
    }


def test_each_condition_node_is_named_for_what_it_builds_and_reads_its_own_recipe():
    pipe = create_pipeline(grid=GRID)
    for source, condition in GRID.namespaces():
        [build] = [n for n in pipe.nodes if n.namespace == f"{source}.{condition}"]
        assert build.name == f"{source}.{condition}.build_{condition}_targets"
        assert f"params:labels.conditions.{condition}" in build.inputs
        assert "params:labels" not in build.inputs
    [original] = [n for n in pipe.nodes if n.namespace == "mnist.original_hard"]
    assert set(original.inputs) == {
        "study_digits",
        "params:labels.conditions.original_hard",
        "params:labels.none_slot",
    }


def test_no_teacher_without_a_condition_that_needs_it():
    pipe = create_pipeline(grid=StudyGrid(("mnist",), ("original_hard", "human_soft")))
    assert "digits" not in pipe.inputs() and "params:labels.teacher" not in pipe.inputs()
    # two conditions, the source's summary, its stacking across sources, the mode-shift count
    assert len(pipe.nodes) == 5


def test_targets_tables_follow_the_contract(outputs, tables):
    study = tables["study_digits"]
    for source, condition in GRID.namespaces():
        t = outputs[f"{source}.{condition}.targets"]
        assert list(t.columns) == ["item_id", "split", *T_COLS]
        expected = study.loc[study["source"] == source, ["item_id", "split"]]
        assert (
            t[["item_id", "split"]].reset_index(drop=True).equals(expected.reset_index(drop=True))
        )
        np.testing.assert_allclose(t[list(T_COLS)].sum(axis=1), 1.0, atol=1e-9)


def _train_targets(outputs, name):
    t = outputs[name]
    return t.loc[t["split"] == "train", list(T_COLS)].to_numpy()


def test_entropy_matching_per_source_on_training_items(outputs):
    for source in GRID.sources:
        human = tg.entropy(_train_targets(outputs, f"{source}.human_soft.targets")).mean()
        smooth = tg.entropy(
            _train_targets(outputs, f"{source}.label_smoothing_matched.targets")
        ).mean()
        assert smooth == pytest.approx(human, rel=0.01)
    for source in GRID.sources:  # the machine labels are strength-matched on both sources
        human = tg.entropy(_train_targets(outputs, f"{source}.human_soft.targets")).mean()
        for condition in ("machine_soft", "machine_soft_large_teacher"):
            machine = tg.entropy(_train_targets(outputs, f"{source}.{condition}.targets")).mean()
            assert machine == pytest.approx(human, rel=1e-6)


def test_targets_summary_shows_each_conditions_strength(outputs, tables):
    summary = outputs["targets_summary"]
    assert {
        "source",
        "condition",
        "split",
        "mean_entropy",
        "mean_off_label_mass",
        "share_argmax_not_original",
    } <= set(summary.columns)
    assert set(zip(summary["source"], summary["condition"], strict=True)) == set(GRID.namespaces())
    row = summary.set_index(["source", "condition", "split"])
    original = tables["study_digits"].set_index("item_id")["original_label"]
    for source, condition in GRID.namespaces():
        t = outputs[f"{source}.{condition}.targets"]
        train = t[t["split"] == "train"]
        o = original.reindex(train["item_id"]).to_numpy()
        p = train[list(T_COLS)].to_numpy()
        got = row.loc[(source, condition, "train")]
        assert got["mean_entropy"] == pytest.approx(tg.entropy(p).mean())
        assert got["mean_off_label_mass"] == pytest.approx((1 - p.max(1)).mean())
        assert got["share_argmax_not_original"] == pytest.approx(
            (p[np.arange(len(p)), o] < p.max(1)).mean()
        )
    for source in GRID.sources:  # the mass-matched control is as strong as h off the label
        mass = row.loc[(source, "label_smoothing_mass_matched", "train"), "mean_off_label_mass"]
        assert mass == pytest.approx(
            row.loc[(source, "human_soft", "train"), "mean_off_label_mass"], rel=1e-6
        )
        assert row.loc[(source, "original_hard", "train"), "mean_off_label_mass"] == 0


def test_mode_shifts_are_counted_per_rule(outputs):
    table = outputs["mode_shifts_by_rule"]
    assert set(table["source"]) == set(GRID.sources)
    assert (table["mode_shift"] <= table["argmax_not_original"]).all()
    assert table["assumptions_ok"].dtype == bool and "assumption_note" in table


def test_synthetic_machine_soft_is_the_tempered_teacher_not_the_generator_label(outputs, tables):
    study = tables["study_digits"]
    synthetic = study[study["source"] == "synthetic"]
    generator = np.stack(synthetic["machine_soft_label"].to_list())
    train = (synthetic["split"] == "train").to_numpy()
    human = tables["human_soft_labels"].set_index("item_id").loc[synthetic["item_id"]]
    target = tg.entropy(tg.human_digits(human[list(H_COLS)].to_numpy())[train]).mean()
    for condition, logits in (
        ("machine_soft", "teacher_logits"),
        ("machine_soft_large_teacher", "large_teacher_logits"),
    ):
        t = outputs[f"synthetic.{condition}.targets"][list(T_COLS)].to_numpy()
        z = outputs[logits].set_index("item_id").loc[synthetic["item_id"]].to_numpy()
        expected = tg.tempered_softmax(z, tg.temperature_for_entropy(z[train], target))
        np.testing.assert_allclose(t, expected, atol=1e-12)
        assert tg.entropy(t[train]).mean() == pytest.approx(target, rel=1e-6)
        assert np.abs(t - generator).max() > 0.1


def test_generator_soft_is_the_mixture_on_synthetic_items_and_one_hot_on_mnist(outputs, tables):
    study = tables["study_digits"]
    synthetic = study[study["source"] == "synthetic"]
    t = outputs["synthetic.generator_soft.targets"][list(T_COLS)].to_numpy()
    np.testing.assert_allclose(t, np.stack(synthetic["machine_soft_label"].to_list()), atol=1e-12)
    mnist = outputs["mnist.generator_soft.targets"]
    assert mnist.equals(outputs["mnist.original_hard.targets"])


def test_large_teacher_sees_no_study_item(tables, labels_params, training_params, monkeypatch):
    seen = {}

    def fake_train_teacher(images, labels, *args, **kwargs):
        seen["images"], seen["labels"] = images, labels
        raise RuntimeError("stop here")

    monkeypatch.setattr(nodes, "train_teacher", fake_train_teacher)
    with pytest.raises(RuntimeError, match="stop here"):
        nodes.fit_large_teacher(
            tables["digits"],
            tables["study_digits"],
            tables["pool_digits"],
            labels_params["large_teacher"],
            training_params,
        )
    n_study_mnist = (tables["study_digits"]["source"] == "mnist").sum()
    n_held_out = 200 + 20  # the pool's MNIST items and its blends' parents
    assert len(seen["images"]) == N_POOL - n_study_mnist - n_held_out
    seen_images = {im.tobytes() for im in seen["images"]}
    study_images = {bytes(b) for b in tables["study_digits"]["image"]}
    assert not study_images & seen_images
    digits, pool = tables["digits"].set_index("item_id"), tables["pool_digits"]
    blends = pool[pool["source"] == "synthetic"]
    held_out = [
        *pool.loc[pool["source"] == "mnist", "item_id"],
        *blends["parent_a"],
        *blends["parent_b"],
    ]
    assert not {bytes(b) for b in digits.loc[held_out, "image"]} & seen_images


def test_large_teacher_and_scoring_pool_draw_from_disjoint_images(tables):
    extra = nodes.large_teacher_images(
        tables["digits"], tables["study_digits"], tables["pool_digits"]
    )
    pool = tables["pool_digits"]
    blends = pool[pool["source"] == "synthetic"]
    ids = set(extra["item_id"])
    assert not ids & set(pool["item_id"])
    assert not ids & (set(blends["parent_a"]) | set(blends["parent_b"]))
    assert not ids & set(tables["study_digits"]["item_id"])
    assert (extra["source"] == "mnist").all() and (extra["item_id"] < 60_000).all()
    # without a pool the teacher draws from every training image outside the study
    everything = nodes.large_teacher_images(
        tables["digits"], tables["study_digits"], pool.iloc[0:0]
    )
    assert len(everything) == len(extra) + 220


def test_teacher_outputs(outputs, tables):
    study_ids = tables["study_digits"]["item_id"]
    for name in ("teacher_logits", "large_teacher_logits"):  # every study item of every source
        assert sorted(outputs[name]["item_id"]) == sorted(study_ids)
        assert np.isfinite(outputs[name].drop(columns="item_id").to_numpy()).all()
    assert outputs["large_teacher_model"]["val_acc"] > 0.3
    assert set(outputs["large_teacher_model"]["train_argmax_not_original"]) == set(GRID.sources)
    model = outputs["teacher_model"]
    assert set(model["sources"]) == set(GRID.sources) and (k := model["k_folds"]) >= 2
    study = tables["study_digits"].set_index("item_id")
    for source, record in model["sources"].items():
        items = study[study["source"] == source]
        assert sorted(record["fold"]) == sorted(items.index)  # a source's folds hold its items
        folds = {i: f for i, f in record["fold"].items() if items.loc[i, "split"] == "train"}
        assert set(folds.values()) == set(range(k)) and len(folds) == record["n_train"]
        assert all(f == -1 for i, f in record["fold"].items() if items.loc[i, "split"] != "train")
        assert len(record["state_dicts"]) == k and 0 <= record["oof_acc"] <= 1
    assert model["sources"]["mnist"]["seed"] != model["sources"]["synthetic"]["seed"]


def test_the_mnist_teacher_is_the_one_a_single_source_study_gets(
    outputs, tables, labels_params, training_params
):
    """Labelling the synthetic items too leaves the MNIST teacher as it was: the same fold draw
    and seeds (labels.teacher.seed), the same logits."""
    study = tables["study_digits"]
    mnist_only = study[study["source"] == "mnist"].reset_index(drop=True)
    model, alone = nodes.fit_teacher(mnist_only, labels_params["teacher"], training_params)
    both = outputs["teacher_logits"].set_index("item_id").loc[alone["item_id"]]
    np.testing.assert_array_equal(both.to_numpy(), alone.set_index("item_id").to_numpy())
    assert model["sources"]["mnist"]["fold"] == outputs["teacher_model"]["sources"]["mnist"]["fold"]
    assert model["sources"]["mnist"]["seed"] == labels_params["teacher"]["seed"]


def test_missing_human_labels_stop_the_run(tables, labels_params):
    human = tables["human_soft_labels"].iloc[3:]
    with pytest.raises(ValueError, match="human_soft_labels lacks 3 study items"):
        nodes.build_condition_targets(
            tables["study_digits"],
            {},
            "renormalise",
            human,
            tables["item_stats"],
            source="mnist",
            condition="human_soft",
        )


def test_condition_without_a_recipe_is_refused(tables, labels_params):
    with pytest.raises(KeyError, match="labels.conditions has no entry"):
        nodes.build_condition_targets(
            tables["study_digits"],
            None,
            "renormalise",
            tables["human_soft_labels"],
            tables["item_stats"],
            source="mnist",
            condition="human_soft",
        )


def test_a_source_without_test_items_stops_before_training(tables, labels_params):
    study = tables["study_digits"].copy()
    study.loc[(study["source"] == "synthetic") & (study["split"] == "test"), "split"] = "train"
    with pytest.raises(ValueError, match="no test items of source 'synthetic'"):
        nodes.build_condition_targets(
            study,
            {},
            "renormalise",
            tables["human_soft_labels"],
            tables["item_stats"],
            source="synthetic",
            condition="human_soft",
        )
