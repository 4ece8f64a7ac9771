"""The annotation pipeline in memory, from each source; a bad file after a good run loses nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from soft_label_audit.columns import H_COLS
from soft_label_audit.crowd.validation import AnnotationValidationError
from soft_label_audit.datasets.annotation_files import AnnotationInputDataset
from soft_label_audit.pipelines.annotation import create_pipeline
from tests.crowd.data import annotation_params, crowd_params, small_digits
from tests.crowd.released_fixture import FIXTURE
from tests.helpers import KeptMemoryDataset, run_in_memory

REPORT = {"n_disputed": 8, "suspect_agreement_below": 0.8}
VALIDITY = {
    "ambiguity_spearman_min": 0.4,
    "mnist_shift_share": [0.003, 0.03],
    "votes_per_item": [20, 60],
    "mnist_vote_agreement": [0.85, 0.99],
    "classifier": {"n_train": 300, "C": 5.0, "seed": 0},
    # the small digits hold few of the reference's MNIST test images: on in its own test below
    "people_reference": {
        "enabled": False,
        "min_majority_agreement": 0.8,
        "label_wrong_tolerance": 0.1,
        "min_shared_label_wrong": 0.75,
        "min_entropy_spearman": 0.2,
    },
}


@pytest.fixture(scope="module")
def data(mnist_arrays):
    return small_digits(mnist_arrays, n_mnist=60, n_synthetic=30)


def inputs(data, annotation_input, **params):
    digits, study = data
    annotation = annotation_params(**params)
    return {
        "annotation_input": annotation_input,
        "digits": digits,
        "study_items": study,
        "params:annotation": annotation,
        "params:simulated_crowd": crowd_params(),
        "params:annotation_report": REPORT,
        "params:crowd_validity": VALIDITY,
        "params:labels.none_slot": "renormalise",
        "params:annotation.mode_support": annotation["mode_support"],
    }


@pytest.fixture(scope="module")
def simulated_run(data):
    return run_in_memory(
        create_pipeline(), inputs(data, AnnotationInputDataset("simulated").load())
    )


def test_simulated_run_meets_the_contracts(simulated_run, data):
    _, study = data
    out = simulated_run
    h = out["human_soft_labels"]
    assert set(h["item_id"]) == set(study["item_id"])
    np.testing.assert_allclose(h[list(H_COLS)].sum(axis=1), 1.0)
    assert set(h["aggregation"]) == {"vote_share_unsure_to_none"}
    assert set(out["human_soft_labels_by_rule"]["aggregation"]) == {
        "vote_share",
        "vote_share_unsure_to_none",
        "dawid_skene",
    }
    stats = out["item_stats"]
    for col in [
        "item_id",
        "source",
        "split",
        "original_label",
        "n_votes",
        "human_entropy",
        "pct_unsure",
        "human_mode",
        "mode_shift",
    ]:
        assert col in stats.columns
    for name in [
        "validated_annotations",
        "study_digits",
        "human_soft_labels",
        "human_soft_labels_by_rule",
        "item_stats",
        "annotator_stats",
        "annotation_agreement",
    ]:
        assert set(out[name]["annotation_source"]) == {"simulated"}, name
    assert list(out["raw_annotations"].columns) == [
        "item_id",
        "annotator_id",
        "choice",
        "unsure",
        "response_time",
    ]
    assert {"all", "mnist", "synthetic"} == set(out["annotation_agreement"]["scope"])
    assert "sim_careless" in out["annotator_stats"].columns
    for fig in ["human_entropy_by_source_figure", "mode_confusion_figure", "disputed_items_figure"]:
        titles = [out[fig]._suptitle.get_text() if out[fig]._suptitle else ""] + [
            ax.get_title() for ax in out[fig].axes
        ]
        assert any("simulated crowd" in t for t in titles), fig


def test_the_simulated_crowd_is_measured_against_people(simulated_run, data, mnist_arrays):
    """The crowd_validity node ends its table with the people rows when the votes are the
    simulated crowd's (and the reference images are in digits), not for another source."""
    import matplotlib.pyplot as plt

    from soft_label_audit.crowd import people_reference, validity
    from soft_label_audit.data_sources.tables import images_to_column
    from soft_label_audit.pipelines.annotation import nodes

    digits, _ = data
    ref = people_reference.load_reference()
    ref = ref[~ref["item_id"].isin(digits["item_id"])]
    index = ref["mnist_test_index"].to_numpy()
    with_reference = pd.concat(
        [
            digits,
            pd.DataFrame(
                {
                    "item_id": ref["item_id"].to_numpy(),
                    "source": "mnist",
                    "original_label": mnist_arrays["test_labels"][index].astype(np.int64),
                    "image": images_to_column(mnist_arrays["test_images"][index]),
                    "machine_soft_label": [None] * len(ref),
                }
            ),
        ],
        ignore_index=True,
    )
    on = {**VALIDITY, "people_reference": {**VALIDITY["people_reference"], "enabled": True}}
    out = simulated_run
    args = (
        out["human_soft_labels"],
        out["validated_annotations"],
        out["study_digits"],
        with_reference,
        on,
        "renormalise",
        crowd_params(),
    )
    table, figure = nodes.check_crowd_validity(out["item_stats"], *args)
    plt.close(figure)
    people = table[table["source"] == validity.PEOPLE_SOURCE].set_index("check")
    assert list(people.index[:2]) == ["people_reference_images", "people_reference_votes"]
    assert people.loc["people_reference_images", "value"] == 100
    assert len(people) == 7 and set(table["annotation_source"]) == {"simulated"}
    raw_file = out["item_stats"].assign(annotation_source="raw_file")
    table, figure = nodes.check_crowd_validity(raw_file, *args)
    plt.close(figure)
    assert validity.PEOPLE_SOURCE not in set(table["source"])


def test_raw_file_csv_gives_the_same_tables(simulated_run, data, tmp_path):
    path = tmp_path / "votes.csv"
    simulated_run["raw_annotations"].to_csv(path, index=False)
    loaded = AnnotationInputDataset("raw_file", raw_path=str(path)).load()
    out = run_in_memory(
        create_pipeline(), inputs(data, loaded, source="raw_file", raw_path=str(path))
    )
    pd.testing.assert_frame_equal(out["raw_annotations"], simulated_run["raw_annotations"])
    pd.testing.assert_frame_equal(
        out["human_soft_labels"].drop(columns="annotation_source"),
        simulated_run["human_soft_labels"].drop(columns="annotation_source"),
    )
    assert set(out["item_stats"]["annotation_source"]) == {"raw_file"}


def test_catalog_and_parameters_must_agree(data, tmp_path):
    with pytest.raises(ValueError, match="annotation.source"):
        run_in_memory(
            create_pipeline(),
            inputs(data, AnnotationInputDataset("simulated").load(), source="raw_file"),
        )


def test_released_fixture_through_the_pipeline(mnist_arrays, tmp_path):
    ids = np.arange(2000)
    from soft_label_audit.data_sources.tables import images_to_column

    digits = pd.DataFrame(
        {
            "item_id": ids,
            "source": "mnist",
            "original_label": mnist_arrays["train_labels"][ids].astype(np.int64),
            "image": images_to_column(mnist_arrays["train_images"][ids]),
            "machine_soft_label": None,
        }
    )
    loaded = AnnotationInputDataset("released", released_path=str(FIXTURE)).load()
    empty_study = pd.DataFrame(
        {"item_id": pd.Series(dtype="int64"), "source": [], "split": [], "original_label": []}
    )
    out = run_in_memory(
        create_pipeline(),
        inputs((digits, empty_study), loaded, source="released", released_path=str(FIXTURE)),
    )
    assert len(out["study_digits"]) == len(loaded.frame)
    assert out["raw_annotations"].empty and out["validated_annotations"].empty
    assert set(out["human_soft_labels"]["aggregation"]) == {"released:soft_label"}
    assert out["item_stats"]["n_votes"].isna().all()
    assert set(out["item_stats"]["split"]) <= {"train", "val", "test"}


def _file_catalog(tmp_path, data, annotation_input, **params):
    persisted = [
        "raw_annotations",
        "validated_annotations",
        "study_digits",
        "human_soft_labels",
        "human_soft_labels_by_rule",
        "item_stats",
        "annotator_stats",
        "annotation_agreement",
    ]
    datasets = {
        name: ParquetDataset(filepath=str(tmp_path / f"{name}.parquet")) for name in persisted
    }
    for name, value in inputs(data, annotation_input, **params).items():
        datasets[name] = KeptMemoryDataset(value)
    return DataCatalog(datasets), persisted


def test_bad_file_after_a_good_run_stops_and_changes_nothing(simulated_run, data, tmp_path):
    good = tmp_path / "good.csv"
    simulated_run["raw_annotations"].to_csv(good, index=False)
    catalog, persisted = _file_catalog(
        tmp_path,
        data,
        AnnotationInputDataset("raw_file", raw_path=str(good)).load(),
        source="raw_file",
        raw_path=str(good),
    )
    SequentialRunner().run(create_pipeline(), catalog)
    before = {name: (tmp_path / f"{name}.parquet").read_bytes() for name in persisted}

    bad = tmp_path / "bad.csv"
    frame = simulated_run["raw_annotations"].copy()
    frame["choice"] = frame["choice"].astype(object)
    frame.loc[[3, 17], "choice"] = "12"
    frame.to_csv(bad, index=False)
    catalog, _ = _file_catalog(
        tmp_path,
        data,
        AnnotationInputDataset("raw_file", raw_path=str(bad)).load(),
        source="raw_file",
        raw_path=str(bad),
    )
    with pytest.raises(AnnotationValidationError) as err:
        SequentialRunner().run(create_pipeline(), catalog)
    message = str(err.value)
    assert (
        str(bad) in message
        and "rule 'choice is one of" in message
        and "2 offending row(s)" in message
    )
    after = {name: (tmp_path / f"{name}.parquet").read_bytes() for name in persisted}
    assert after == before


def test_missing_file_is_named(tmp_path):
    from kedro.io import DatasetError

    with pytest.raises(DatasetError, match="nothing.csv"):
        AnnotationInputDataset("raw_file", raw_path=str(tmp_path / "nothing.csv")).load()
