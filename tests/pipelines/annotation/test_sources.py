"""Every registered annotation source is wired through (soft_label_audit.crowd.sources): the
configuration and the catalog entry know its file setting, the dataset reads its file and the
annotation pipeline turns its minimal input into tables that meet the contracts. A source
registered only in the registry is accepted everywhere, and no module of the package switches
on a source's name."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DatasetError

from soft_label_audit import contracts
from soft_label_audit.configs import AnnotationConfig
from soft_label_audit.crowd import collection, sources
from soft_label_audit.data_sources.tables import images_to_column
from soft_label_audit.datasets.annotation_files import AnnotationInputDataset
from soft_label_audit.params import ParameterError
from soft_label_audit.pipelines.annotation import create_pipeline
from soft_label_audit.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT
from tests.crowd.data import annotation_params, small_digits
from tests.crowd.released_fixture import FIXTURE
from tests.helpers import run_in_memory
from tests.pipelines.annotation.test_annotation_pipeline import inputs

PACKAGE = PROJECT_ROOT / "src" / "soft_label_audit"


def _votes(study: pd.DataFrame) -> pd.DataFrame:
    """Five votes per study item: three sure votes for its label, one unsure vote for the next
    digit and one sure "none"."""
    rows = []
    for item_id, label in zip(study["item_id"], study["original_label"], strict=True):
        choices = [(str(label), False)] * 3 + [(str((label + 1) % 10), True), ("none", False)]
        for k, (choice, unsure) in enumerate(choices):
            rows.append((int(item_id), f"a{k}", choice, unsure, 1.0 + k))
    return pd.DataFrame(
        rows, columns=["item_id", "annotator_id", "choice", "unsure", "response_time"]
    )


def _released_digits(mnist_arrays) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The MNIST training images the released fixture refers to; the file picks the items."""
    ids = np.arange(2000)
    digits = pd.DataFrame(
        {
            "item_id": ids,
            "source": "mnist",
            "original_label": mnist_arrays["train_labels"][ids].astype(np.int64),
            "image": images_to_column(mnist_arrays["train_images"][ids]),
            "machine_soft_label": None,
        }
    )
    empty_study = pd.DataFrame(
        {"item_id": pd.Series(dtype="int64"), "source": [], "split": [], "original_label": []}
    )
    return digits, empty_study


def _simulated(mnist_arrays, tmp_path):
    return (*small_digits(mnist_arrays, n_mnist=30, n_synthetic=15), None)


def _released(mnist_arrays, tmp_path):
    return (*_released_digits(mnist_arrays), FIXTURE)


def _raw_file(mnist_arrays, tmp_path):
    digits, study = small_digits(mnist_arrays, n_mnist=30, n_synthetic=15)
    path = tmp_path / "votes.csv"
    _votes(study).to_csv(path, index=False)
    return digits, study, path


#: the smallest input of each registered source: (digits, study_items, its file or None)
MINIMAL_INPUT = {"simulated": _simulated, "released": _released, "raw_file": _raw_file}

ANNOTATION_TABLES = [
    "raw_annotations",
    "validated_annotations",
    "study_digits",
    "human_soft_labels_by_rule",
    "human_soft_labels",
    "item_stats",
]
WITH_SOURCE = [
    "study_digits",
    "human_soft_labels_by_rule",
    "human_soft_labels",
    "item_stats",
    "annotator_stats",
    "annotation_agreement",
    "crowd_validity",
]


def _run(name: str, digits, study, file: Path | None, tmp_path) -> dict:
    """The annotation pipeline on source ``name`` as a run would make it: the dataset built
    like the catalog entry (every file setting given), the parameters naming the same file."""
    paths = {key: str(tmp_path / "absent" / key) for key in sources.path_settings()}
    key = sources.get(name).path_setting
    if key is not None:
        paths[key] = str(file)
    loaded = AnnotationInputDataset(name, **paths).load()
    return run_in_memory(create_pipeline(), inputs((digits, study), loaded, source=name, **paths))


def _titles(figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes] + [
        figure._suptitle.get_text() if figure._suptitle else ""
    ]


def _check_wired_through(name: str, out: dict, params: dict) -> None:
    entry = sources.get(name)
    for table in ANNOTATION_TABLES:
        contracts.check_table(table, out[table])
    for table in WITH_SOURCE:
        if table == "annotator_stats" and not entry.carries_votes:
            assert out[table].empty  # soft labels without votes name no annotators
            continue
        assert set(out[table]["annotation_source"]) == {name}, table
    config = AnnotationConfig.from_params(params)
    assert set(out["human_soft_labels"]["aggregation"]) == {config.chosen_rule}
    assert set(out["human_soft_labels"]["item_id"]) == set(out["study_digits"]["item_id"])
    assert len(out["study_digits"]) > 0
    assert (len(out["validated_annotations"]) > 0) is entry.carries_votes
    assert out["released_soft_labels"].empty is entry.carries_votes
    if entry.carries_votes:
        assert set(out["human_soft_labels_by_rule"]["aggregation"]) == set(config.rules)
    assert (len(out["annotator_traits"].columns) > 1) is (name == sources.fingerprinted_source())
    title = f"annotation source: {name}" + (f" ({entry.title_note})" if entry.title_note else "")
    for figure in ["human_entropy_by_source_figure", "mode_confusion_figure"]:
        assert any(title in t for t in _titles(out[figure])), (figure, _titles(out[figure]))


def test_every_registered_source_has_a_minimal_input_here():
    assert set(MINIMAL_INPUT) == set(sources.SOURCES)


@pytest.mark.parametrize("name", list(sources.SOURCES))
def test_every_registered_source_runs_through_the_annotation_pipeline(name, mnist_arrays, tmp_path):
    digits, study, file = MINIMAL_INPUT[name](mnist_arrays, tmp_path)
    out = _run(name, digits, study, file, tmp_path)
    _check_wired_through(name, out, out["params:annotation"])


@pytest.mark.parametrize("name", list(sources.SOURCES))
def test_the_configuration_wires_every_registered_source(name, tmp_path):
    """``--params "annotation.source=NAME,annotation.<path_setting>=PATH"`` sets the catalog
    entry and the parameters alike; the catalog entry builds the dataset of that file."""
    key = sources.get(name).path_setting
    runtime = {"source": name} | ({key: str(tmp_path / "file")} if key else {})
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        **CONFIG_LOADER_ARGS,
        env="base",
        runtime_params={"annotation": runtime},
    )
    params = loader["parameters"]["annotation"]
    entry = dict(loader["catalog"]["annotation_input"])
    config = AnnotationConfig.from_params(params)
    assert config.source == entry["source"] == name
    assert set(config.paths) == set(sources.path_settings()) <= set(entry)
    assert config.path == (None if key is None else str(tmp_path / "file"))
    entry.pop("type")
    dataset = AnnotationInputDataset(**entry)
    assert dataset._path() == config.path
    sources.check_source(sources.AnnotationInput(name, dataset._path()), config)


class TsvVotes(sources.AnnotationSource):
    """A source that no module of the package knows: votes as tab-separated text, with a file
    setting of its own."""

    name = "tsv_votes"
    path_setting = "tsv_path"
    title_note = "votes from a TSV file"

    def read_file(self, path):
        return pd.read_csv(path, sep="\t", dtype=str)

    def collect(self, annotation_input, digits, study_items, config, simulated_crowd):
        study = collection.study_with_images(study_items, digits)
        return collection.collect_votes(
            annotation_input.frame, annotation_input.path, study, study_items, config, self.name
        )


def test_a_source_registered_only_in_the_registry_is_accepted_everywhere(
    mnist_arrays, tmp_path, monkeypatch
):
    digits, study = small_digits(mnist_arrays, n_mnist=30, n_synthetic=15)
    path = tmp_path / "votes.tsv"
    _votes(study).to_csv(path, sep="\t", index=False)
    params = annotation_params(source="tsv_votes", tsv_path=str(path))
    with pytest.raises(ParameterError, match=r"annotation has unknown settings \['tsv_path'\]"):
        AnnotationConfig.from_params(params)
    with pytest.raises(ParameterError, match="annotation.source must be one of"):
        AnnotationConfig.from_params(annotation_params(source="tsv_votes"))
    with pytest.raises(DatasetError, match="tsv_path"):
        AnnotationInputDataset("tsv_votes", tsv_path=str(path))

    monkeypatch.setitem(sources.SOURCES, "tsv_votes", TsvVotes())
    assert AnnotationConfig.from_params(params).path == str(path)
    with pytest.raises(ParameterError, match=r"annotation.tsv_path must be a non-empty string"):
        AnnotationConfig.from_params({**params, "tsv_path": ""})
    out = _run("tsv_votes", digits, study, path, tmp_path)
    _check_wired_through("tsv_votes", out, out["params:annotation"])

    csv = tmp_path / "votes.csv"
    _votes(study).to_csv(csv, index=False)
    reference = _run("raw_file", digits, study, csv, tmp_path)
    for table in ["validated_annotations", "human_soft_labels_by_rule", "item_stats"]:
        pd.testing.assert_frame_equal(
            out[table].drop(columns="annotation_source"),
            reference[table].drop(columns="annotation_source"),
        )


def _switches_on(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines that compare with a source name or key a dict literal by one."""

    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(named(e) for e in node.elts)
        return False

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(named(n) for n in [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(k is not None and named(k) for k in node.keys):
            lines.append(node.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and named(node.value):
            lines.append(node.lineno)
    return lines


def test_only_the_registry_names_a_source():
    names = set(sources.SOURCES)
    registry = PACKAGE / "crowd" / "sources.py"
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != registry and (lines := _switches_on(ast.parse(path.read_text()), names))
    }
    assert found == {}
    assert _switches_on(ast.parse('if source == "released": pass'), names) == [1]
    assert _switches_on(ast.parse('KEYS = {"raw_file": "raw_path"}'), names) == [1]
    assert _switches_on(ast.parse('NAMES = ("simulated", "released")'), names) == [1]
    assert _switches_on(ast.parse('block.get("released")'), names) == []
