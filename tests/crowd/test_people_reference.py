"""The crowd measured against people (soft_label_audit.crowd.people_reference): the comparison's
numerics on hand-made votes, the shipped reference against the project's MNIST, the reference's
vote file, and a crowd that never remembers the images it is compared on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.columns import MNIST_TEST_IDS
from soft_label_audit.crowd import collection, people_reference, simulated, validity
from soft_label_audit.crowd.people_reference import PeopleReferenceConfig, compare
from soft_label_audit.crowd.validation import validate_votes
from soft_label_audit.data_sources.tables import images_to_column
from soft_label_audit.parameter_tree import base_block
from tests.conftest import PROJECT_ROOT

from .data import crowd_params

CONFIG = PeopleReferenceConfig.from_params(base_block("crowd_validity.people_reference"))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return people_reference.load_reference()


# --- the comparison on hand-made counts (given, guessed, neither) -----------------------------


def test_a_crowd_that_votes_as_the_people_agrees_fully():
    people = np.array([[5, 0, 0], [1, 4, 0], [3, 0, 2], [2, 3, 0], [4, 1, 0], [0, 2, 3]])
    c = compare(people, people * 4)  # the same shares with 20 votes each
    assert c.n_images == 6 and c.n_people_votes == 30 and c.n_crowd_votes == 120
    assert c.n_majority == 6 and c.majority_agreement == 1.0
    assert c.people_label_wrong == c.crowd_label_wrong == c.both_label_wrong == pytest.approx(0.5)
    assert c.entropy_spearman == pytest.approx(1.0)


def test_agreement_shares_and_entropy_known_values():
    people = np.array([[5, 0, 0], [1, 4, 0], [2, 2, 1], [3, 0, 2], [0, 0, 5]])
    # plurality: given, guessed, guessed (people: no majority), neither, tie given/neither
    crowd = np.array([[18, 2, 0], [3, 15, 2], [6, 14, 0], [4, 1, 15], [10, 0, 10]])
    c = compare(people, crowd)
    assert c.n_majority == 4  # (2, 2, 1) has no majority of 3
    assert c.majority_agreement == pytest.approx(2 / 4)  # the tie counts as disagreement
    # label called wrong (fewer than half the votes name it): people items 1, 2, 4; crowd 1, 2, 3
    assert c.people_label_wrong == pytest.approx(3 / 5)
    assert c.crowd_label_wrong == pytest.approx(3 / 5)
    assert c.both_label_wrong == pytest.approx(2 / 5)
    h_people = people_reference.category_entropy(people)
    h_crowd = people_reference.category_entropy(crowd)
    assert h_people[0] == 0.0 and h_people[2] == pytest.approx(
        -2 * 0.4 * np.log(0.4) - 0.2 * np.log(0.2)
    )
    assert h_crowd[4] == pytest.approx(np.log(2))
    from scipy import stats

    assert c.entropy_spearman == pytest.approx(stats.spearmanr(h_people, h_crowd).statistic)


def test_a_crowd_that_rejects_every_label_fails_its_targets():
    people = np.array([[5, 0, 0]] * 8 + [[1, 4, 0], [0, 4, 1]])
    crowd = np.array([[2, 15, 3]] * 10)
    rows = pd.DataFrame(
        validity.people_reference_rows(compare(people, crowd), CONFIG, n_reference=10)
    ).set_index("check")
    assert rows.loc["people_majority_agreement", "value"] == pytest.approx(0.2)
    assert rows.loc["crowd_label_wrong_share", "value"] == 1.0
    assert rows.loc["people_label_wrong_share", "value"] == pytest.approx(0.2)
    failing = {"people_majority_agreement", "crowd_label_wrong_share", "people_entropy_spearman"}
    assert set(rows.index[~rows["holds"]]) == failing  # entropy: constant crowd side is NaN
    assert rows.loc["both_label_wrong_share", "holds"]  # it does reject the two wrong ones
    assert set(rows["source"]) == {validity.PEOPLE_SOURCE}


def test_a_crowd_close_to_the_people_meets_every_target():
    rng = np.random.default_rng(0)
    people = rng.multinomial(5, [0.8, 0.15, 0.05], size=100)
    crowd = people * 4 + rng.multinomial(1, [0.9, 0.05, 0.05], size=100)
    rows = pd.DataFrame(
        validity.people_reference_rows(compare(people, crowd), CONFIG, n_reference=100)
    )
    assert rows["holds"].all(), rows.to_string()
    assert len(rows) == 7 and rows.set_index("check").loc["people_reference_votes", "value"] == 500


def test_crowd_votes_fall_in_the_peoples_categories():
    ref = pd.DataFrame({"item_id": [1, 2], "given_label": [4, 3], "guessed_label": [9, 3]})
    votes = pd.DataFrame(
        {
            "item_id": [2, 1, 1, 1, 1, 2, 2],
            "choice": ["3", "4", "9", "none", "7", "8", "none"],
            "unsure": [True, False, True, False, False, False, False],
        }
    )
    counts = people_reference.crowd_counts(votes, ref)
    # item 2's labels are the same: its "guessed" category stays empty
    assert counts.tolist() == [[1, 1, 2], [1, 0, 2]]
    with pytest.raises(ValueError, match="outside the reference"):
        people_reference.crowd_counts(votes.assign(item_id=7), ref)


# --- the shipped reference ---------------------------------------------------------------------


def test_the_shipped_reference_is_100_images_of_five_votes(reference):
    assert len(reference) == 100 and reference["item_id"].is_unique
    assert reference["item_id"].between(MNIST_TEST_IDS.start, MNIST_TEST_IDS.stop - 1).all()
    assert (reference["item_id"] == 60_000 + reference["mnist_test_index"]).all()
    counts = people_reference.people_counts(reference)
    assert (counts.sum(axis=1) == 5).all() and counts.sum() == 500
    same = reference["given_label"] == reference["guessed_label"]
    assert same.sum() == 13 and (reference.loc[same, "guessed"] == 0).all()
    # the release counts a vote for a label that is both given and guessed under both
    raw = json.loads(people_reference.reference_path().read_text())
    assert (
        sum(e["mturk"]["given"] + e["mturk"]["guessed"] + e["mturk"]["neither"] for e in raw) > 500
    )
    notice = people_reference.reference_path().with_name("NOTICE").read_text()
    assert "arXiv:2103.14749" in notice and "Apache License 2.0" in notice
    assert "https://github.com/cleanlab/label-errors" in notice


def test_the_reference_labels_are_the_projects_mnist_test_labels(reference, mnist_arrays):
    labels = mnist_arrays["test_labels"][reference["mnist_test_index"].to_numpy()]
    assert (labels == reference["given_label"].to_numpy()).all()


def test_a_broken_reference_is_refused(tmp_path, reference):
    raw = json.loads(people_reference.reference_path().read_text())
    path = tmp_path / "ref.json"
    path.write_text(json.dumps([{**raw[0], "mturk": {"given": 4, "guessed": 0, "neither": 0}}]))
    with pytest.raises(ValueError, match="are not 5 votes"):
        people_reference.load_reference(path)
    path.write_text(json.dumps([raw[0], raw[0]]))
    with pytest.raises(ValueError, match="images listed twice"):
        people_reference.load_reference(path)
    path.write_text(json.dumps([{k: v for k, v in raw[0].items() if k != "our_guessed_label"}]))
    with pytest.raises(ValueError, match="lacks 'our_guessed_label'"):
        people_reference.load_reference(path)


def test_the_example_vote_file_is_the_reference(reference):
    path = PROJECT_ROOT / "docs" / "examples" / "votes_northcutt2021_mnist.csv"
    frame = pd.read_csv(path, dtype=str)
    study = reference[["item_id"]].assign(source="mnist", split="test")
    study["original_label"] = reference["given_label"]
    votes = validate_votes(frame, study, str(path))  # the raw-file route's own checks
    assert len(votes) == 500 and (votes.groupby("item_id").size() == 5).all()
    assert votes["annotator_id"].is_unique  # one vote per annotator: the release names none
    assert not votes["unsure"].any()
    expected = people_reference.reference_votes(reference)
    columns = ["item_id", "annotator_id", "choice"]
    assert votes[columns].values.tolist() == expected[columns].values.tolist()
    back = people_reference.crowd_counts(votes, reference)
    assert (back == people_reference.people_counts(reference)).all()


# --- the crowd on the reference images ----------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_test_digits(mnist_arrays) -> pd.DataFrame:
    """The MNIST test images as `digits` rows (the crowd's memory and the reference images)."""
    n = len(MNIST_TEST_IDS)
    return pd.DataFrame(
        {
            "item_id": np.asarray(MNIST_TEST_IDS, np.int64),
            "source": "mnist",
            "original_label": mnist_arrays["test_labels"].astype(np.int64),
            "image": images_to_column(mnist_arrays["test_images"]),
            "machine_soft_label": [None] * n,
        }
    )


def test_the_crowd_never_remembers_the_reference_images(mnist_test_digits, reference, monkeypatch):
    crowd = crowd_params()
    config = simulated.CrowdConfig.from_params(crowd)
    remembered = []
    fit = collection.perception.observers_from_config

    def spy(images, labels, *args, **kwargs):
        remembered.extend(bytes(image) for image in images)
        return fit(images, labels, *args, **kwargs)

    monkeypatch.setattr(collection.perception, "observers_from_config", spy)
    run = people_reference.crowd_on_reference(mnist_test_digits, crowd, reference)
    shown = people_reference.reference_images(mnist_test_digits, reference)["image"]
    assert len(remembered) == config.perception.memory_size
    assert not set(remembered) & {bytes(image) for image in shown}  # no image, by its pixels
    assert not set(run.memory_ids) & set(reference["item_id"])
    assert set(run.votes["item_id"]) == set(reference["item_id"])
    # the study's memory (nothing left out) is a sample of the same size that holds some of the
    # reference images: leaving them out is the check's doing, not the sample's
    study_memory = collection.crowd_memory(mnist_test_digits, config)
    assert len(study_memory) == len(run.memory_ids)
    assert set(study_memory["item_id"]) & set(reference["item_id"])
    assert run.comparison.n_images == 100 and run.comparison.n_people_votes == 500


def test_the_comparison_needs_every_reference_image_with_its_label(mnist_test_digits, reference):
    missing = mnist_test_digits[mnist_test_digits["item_id"] != reference["item_id"].iloc[0]]
    with pytest.raises(ValueError, match="1 of the 100 reference images"):
        people_reference.reference_images(missing, reference)
    relabelled = mnist_test_digits.copy()
    at = relabelled["item_id"] == reference["item_id"].iloc[3]
    relabelled.loc[at, "original_label"] = (relabelled.loc[at, "original_label"] + 1) % 10
    with pytest.raises(ValueError, match="differ from the reference"):
        people_reference.reference_images(relabelled, reference)


def test_the_table_has_no_rows_when_disabled(mnist_test_digits):
    off = PeopleReferenceConfig(**{**CONFIG.__dict__, "enabled": False})
    table = validity.people_reference_table(mnist_test_digits, crowd_params(), off)
    assert table.empty and list(table.columns) == validity.COLUMNS
