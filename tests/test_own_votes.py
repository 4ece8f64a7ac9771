"""The vote file defines the study (``kedro run --env own_votes --params
"annotation.raw_path=FILE"``): the study items are exactly the voted items (MNIST training or
test images, synthetic items), the sources are those the votes cover, each source is drawn and
split on its own seed stream, nothing that learned from images (the simulated crowd's memory,
the large teacher, the validity classifier) sees a study item, and bad ids or settings stop the
run before any node with a short message and exit status 2."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from soft_label_audit.columns import MNIST_TEST_IDS
from soft_label_audit.crowd import collection, simulated
from soft_label_audit.crowd.validation import AnnotationValidationError, validate_votes
from soft_label_audit.data_sources import study
from soft_label_audit.parameter_tree import read_parameters
from soft_label_audit.params import ParameterError
from soft_label_audit.pipelines.digits import nodes as digit_nodes
from tests.conftest import PROJECT_ROOT
from tests.helpers import config_loader, data_root, kedro_cli, make_project_copy

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
CONDITIONS = ["original_hard", "human_soft", "machine_soft", "machine_soft_large_teacher"]


@pytest.fixture(scope="module")
def test_params() -> dict:
    return dict(config_loader(PROJECT_ROOT, "test")["parameters"])


@pytest.fixture(scope="module")
def digits(small_mnist_raw, test_params) -> pd.DataFrame:
    """600 MNIST training and 200 test images and the test configuration's synthetic items."""
    mnist = digit_nodes.build_mnist_table(small_mnist_raw)
    synthetic = digit_nodes.make_synthetic_digits(
        small_mnist_raw, test_params["digits"]["synthetic"]
    )
    return digit_nodes.combine_digits(mnist, synthetic)


def _draw(digits: pd.DataFrame, n_mnist: int, pool=None, seed: int = 2) -> pd.DataFrame:
    return study.select_study_items(
        digits, {"mnist": n_mnist, "synthetic": 50}, {"mnist": pool}, FRACTIONS, seed
    )


def test_a_sources_draw_and_split_do_not_depend_on_the_other_sources_settings(digits):
    base = _draw(digits, 100, (0, 60000))
    for n_mnist, pool in [(150, (0, 60000)), (60, (300, 600)), (100, (60000, 70000))]:
        other = _draw(digits, n_mnist, pool)
        synthetic = base[base["source"] == "synthetic"].reset_index(drop=True)
        assert other[other["source"] == "synthetic"].reset_index(drop=True).equals(synthetic)
        assert not other[other["source"] == "mnist"]["item_id"].equals(
            base[base["source"] == "mnist"]["item_id"]
        )
    # the seed still matters
    assert not _draw(digits, 100, (0, 60000), seed=3).equals(base)


def test_voted_items_are_the_study_and_a_kept_source_keeps_its_split(digits):
    drawn = _draw(digits, 100, (0, 60000))
    synthetic = drawn[drawn["source"] == "synthetic"]
    tests = digits[digits["item_id"].isin(MNIST_TEST_IDS)].groupby("original_label").head(5)
    voted_ids = [*synthetic["item_id"], *tests["item_id"]]
    items = study.voted_study_items(digits, voted_ids, FRACTIONS, seed=2)
    assert sorted(items["item_id"]) == sorted(voted_ids)
    assert (items.loc[items["source"] == "mnist", "item_id"] >= MNIST_TEST_IDS.start).all()
    mnist = items[items["source"] == "mnist"]
    assert mnist["split"].value_counts().to_dict() == {"train": 30, "val": 10, "test": 10}
    kept = items[items["source"] == "synthetic"].reset_index(drop=True)
    assert kept.equals(synthetic.reset_index(drop=True))


def test_ids_of_no_source_are_not_called_study_items():
    ranges = study.source_id_ranges(100_000, 80)
    with pytest.raises(study.StudyItemsError, match="not an item of any source: -1, 85000"):
        study.sources_of_ids([3, 85000, -1, 100_001], ranges, "v.csv")
    assert study.sources_of_ids([65000, 3, 100_001], ranges, "v.csv") == {
        "mnist": [3, 65000],
        "synthetic": [100_001],
    }


def _votes(ids) -> pd.DataFrame:
    return pd.DataFrame(
        {"item_id": [str(i) for i in ids], "annotator_id": "a", "choice": "1", "unsure": "false"}
    )


def test_votes_outside_the_study_name_the_setting_and_ids_of_no_source_are_told_apart(digits):
    drawn = _draw(digits, 100, (0, 60000))
    outside = int(digits.loc[~digits["item_id"].isin(drawn["item_id"]), "item_id"].iloc[0])
    ids = [*drawn["item_id"].head(3), outside]
    with pytest.raises(AnnotationValidationError) as caught:
        validate_votes(_votes(ids), drawn, "v.csv", False, digits["item_id"])
    message = str(caught.value)
    assert "rule 'item_id is a study item': 1 offending row(s)" in message
    assert "--env own_votes" in message and "digits.study.items_from" in message
    assert "item of a source" not in message and "not an item of any source" not in message
    with pytest.raises(AnnotationValidationError) as caught:
        validate_votes(_votes([*ids[:3], 85000]), drawn, "v.csv", False, digits["item_id"])
    message = str(caught.value)
    assert "rule 'item_id is an item of a source': 1 offending row(s)" in message
    assert "85000" in message and "not an item of any source" in message
    assert "is a study item" not in message


def test_the_crowd_memory_leaves_out_study_items_that_are_test_images(digits, test_params, caplog):
    tests = digits.loc[digits["item_id"].isin(MNIST_TEST_IDS), "item_id"]
    studied = tests.head(30).to_numpy()
    config = simulated.CrowdConfig.from_params(test_params["simulated_crowd"])
    with caplog.at_level("INFO"):
        memory = collection.crowd_memory(digits, _with_memory(config, 10_000), exclude_ids=studied)
    assert len(memory) == len(tests) - 30 and not memory["item_id"].isin(studied).any()
    assert "simulated crowd memory: 170 MNIST test images; 30 study items excluded" in caplog.text
    # a sampled memory is the same as before for a study without test images
    small = _with_memory(config, 50)
    assert collection.crowd_memory(digits, small, exclude_ids=[1, 2])["item_id"].equals(
        tests.to_frame().sample(n=50, random_state=small.seed).sort_values("item_id")["item_id"]
    )


def _with_memory(config, size: int):
    return dataclasses.replace(
        config, perception=dataclasses.replace(config.perception, memory_size=size)
    )


def test_a_source_without_study_items_is_refused_at_start_up(test_params):
    params = {**test_params, "digits": {**test_params["digits"]}}
    params["digits"]["study"] = {
        **params["digits"]["study"],
        "n_per_source": {"mnist": 100, "synthetic": 0},
    }
    with pytest.raises(ParameterError, match="leaves source 'synthetic' of study.sources without"):
        read_parameters(params)
    params["digits"]["study"] = {**params["digits"]["study"], "items_from": "vote"}
    with pytest.raises(ParameterError, match="digits.study.items_from must be one of"):
        read_parameters(params)


def test_a_split_left_empty_by_the_draw_is_a_user_error(digits):
    with pytest.raises(study.StudyItemsError, match="leaves source 'mnist' without"):
        digit_nodes.choose_study_items(
            digits, {**_study_block(), "n_per_source": {"mnist": 4, "synthetic": 50}}
        )


def _study_block() -> dict:
    from soft_label_audit.parameter_tree import base_block

    return base_block("digits.study")


# ---- kedro run --env own_votes, end to end on the test configuration's sizes ----


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_raw_dir) -> Path:
    """A project copy whose own_votes environment has the test configuration's sizes."""
    root = make_project_copy(tmp_path_factory.mktemp("own_votes_project"), mnist_raw_dir)
    own = root / "conf" / "own_votes"
    for path in (root / "conf" / "test").glob("parameters_*.yml"):
        tree = yaml.safe_load(path.read_text())
        if path.name == "parameters_digits.yml":
            tree["digits"]["study"]["items_from"] = "votes"
        (own / path.name).write_text(yaml.safe_dump(tree))
    # the conditions that read a teacher, and two others (study.sources comes from the votes)
    study_block = {"study": {"sources": ["mnist", "synthetic"], "conditions": CONDITIONS}}
    (own / "parameters_study.yml").write_text(yaml.safe_dump(study_block))
    return root


@pytest.fixture(scope="module")
def full_digits(mnist_arrays, test_params) -> pd.DataFrame:
    mnist = digit_nodes.build_mnist_table(mnist_arrays)
    synthetic = digit_nodes.make_synthetic_digits(mnist_arrays, test_params["digits"]["synthetic"])
    return digit_nodes.combine_digits(mnist, synthetic)


def _vote_file(path: Path, items: pd.DataFrame) -> Path:
    """Three annotators per item voting its original label, but the third unsure of the next
    digit on every other item (the human labels need some entropy)."""
    rows = []
    for n, (i, label) in enumerate(zip(items["item_id"], items["original_label"], strict=True)):
        for a in ("ann_a", "ann_b", "ann_c"):
            other = a == "ann_c" and n % 2 == 0
            choice = (int(label) + 1) % 10 if other else int(label)
            rows.append({"item_id": i, "annotator_id": a, "choice": choice, "unsure": other})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _run(project: Path, votes: Path):
    """The run and what it added to info.log (the terminal wraps long records)."""
    log = project / "info.log"
    before = log.stat().st_size if log.exists() else 0
    result = kedro_cli(
        project,
        "run",
        "--env",
        "own_votes",
        "--pipelines",
        "digits,annotation,labels",
        "--params",
        f"annotation.raw_path={votes}",
        timeout=900,
    )
    with log.open() as stream:
        stream.seek(before)
        return result, stream.read()


def _excluded(log: str, part: str) -> int:
    found = re.findall(rf"{part}: \d+ MNIST \w+ images; (\d+) study items", log)
    assert found, f"no log line of the {part}"
    return int(found[-1])


@pytest.mark.slow
def test_own_votes_define_the_study_end_to_end(project, full_digits, test_params, tmp_path):
    default = digit_nodes.choose_study_items(full_digits, test_params["digits"]["study"])
    drawn_synthetic = default[default["source"] == "synthetic"].reset_index(drop=True)
    mnist = full_digits[full_digits["source"] == "mnist"]
    test_images = mnist[mnist["item_id"].isin(MNIST_TEST_IDS)].groupby("original_label").head(3)
    outside = mnist[
        (mnist["item_id"] < MNIST_TEST_IDS.start) & ~mnist["item_id"].isin(default["item_id"])
    ]
    train_images = outside.groupby("original_label").tail(3)
    synthetic = full_digits[full_digits["item_id"].isin(drawn_synthetic["item_id"])]
    voted = pd.concat([test_images, train_images, synthetic])
    votes = _vote_file(tmp_path / "my_votes.csv", voted)

    result, log = _run(project, votes)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    root = data_root(project, "own_votes")
    assert root == project / "data" / "own_votes"
    items = pd.read_parquet(root / "03_primary" / "study_items.parquet")
    assert sorted(items["item_id"]) == sorted(voted["item_id"])
    kept = items[items["source"] == "synthetic"].reset_index(drop=True)
    assert kept[["item_id", "split"]].equals(drawn_synthetic[["item_id", "split"]])
    assert set(items.loc[items["source"] == "mnist", "split"]) == {"train", "val", "test"}
    # nothing that learned from images saw a study item
    assert _excluded(log, "large teacher pool") == len(train_images)
    assert _excluded(log, "validity classifier pool") == len(train_images)
    assert "60 mnist items (30 MNIST test images)" in log
    for source in ("mnist", "synthetic"):
        path = root / "05_model_input" / "targets" / source / "human_soft.parquet"
        targets = pd.read_parquet(path)
        assert set(targets["item_id"]) == set(items.loc[items["source"] == source, "item_id"])
    record = yaml.safe_load((root / "provenance" / "digits.json").read_text())
    assert record["settings"]["annotation_input"]["path"] == str(votes)

    # votes on MNIST alone: a one-source study, labels stage included
    shutil.rmtree(root)
    only_mnist = _vote_file(tmp_path / "mnist_votes.csv", pd.concat([test_images, train_images]))
    result, log = _run(project, only_mnist)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "study.sources = ['mnist']" in log
    items = pd.read_parquet(root / "03_primary" / "study_items.parquet")
    assert set(items["source"]) == {"mnist"} and len(items) == 60
    summary = pd.read_csv(root / "08_reporting" / "targets_summary.csv")
    assert set(summary["source"]) == {"mnist"}
    assert not (root / "05_model_input" / "targets" / "synthetic").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "params", "expected"),
    [
        ("own_votes", "", "2 item id(s) are not an item of any source: -1, 85000"),
        (
            "test",
            "digits.study.n_per_source.synthetic=0",
            "leaves source 'synthetic' of study.sources",
        ),
    ],
)
def test_bad_ids_and_an_empty_source_stop_before_any_node(
    tmp_path_factory, mnist_raw_dir, tmp_path, env, params, expected
):
    project = make_project_copy(tmp_path_factory.mktemp("refusing_project"), mnist_raw_dir)
    votes = tmp_path / "bad_votes.csv"
    pd.DataFrame(
        {"item_id": [3, 85000, -1], "annotator_id": "a", "choice": "1", "unsure": "false"}
    ).to_csv(votes, index=False)
    given = params or f"annotation.raw_path={votes}"
    result = kedro_cli(project, "run", "--env", env, "--params", given, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert expected in output, output
    assert len(output.splitlines()) <= 10 and "Traceback" not in output, output
    assert "node" not in output.lower(), output
    assert not data_root(project, env).exists()


def test_unanimous_votes_stop_machine_soft_as_a_user_error():
    from soft_label_audit import targets as tg

    original = np.arange(12) % 10
    human = np.zeros((12, 11))
    human[np.arange(12), original] = 1.0  # one vote per item
    inputs = tg.TargetInputs(
        original=original,
        human=human,
        teacher_logits=np.random.default_rng(0).normal(size=(12, 10)),
    )
    with pytest.raises(tg.UnanimousHumanLabelsError, match="zero mean entropy") as caught:
        tg.build_targets("machine_soft", inputs, {})
    assert "study.conditions" in caught.value.fix
    human[0, [0, 1]] = 0.5  # some entropy: a temperature exists
    assert np.isfinite(tg.build_targets("machine_soft", inputs, {})).all()
