"""The simulated crowd measured against people: real judgements of 100 MNIST test images.

The reference (shipped as package data, read offline; see ``reference_data/NOTICE``) is the
Mechanical Turk validation of Northcutt, Athalye & Mueller (2021), "Pervasive Label Errors in
Test Sets Destabilize Machine Learning Benchmarks" (NeurIPS 2021 Datasets and Benchmarks,
arXiv:2103.14749; github.com/cleanlab/label-errors, Apache-2.0). Five workers judged each of
100 MNIST test images (item id ``60000 + id``), choosing the dataset's label (``given``), the
label confident learning proposed (``guessed``) or ``neither``. Where the two labels are the
same (13 images) the release counts a worker's choice of it under both; here it is counted
once, under ``given``, and that image's ``guessed`` category stays empty on both sides.

The crowd of the study's ``simulated_crowd`` block (same settings, same seed, hence the same
annotators) votes on the same images, with those images removed from its memory
(:func:`crowd_on_reference`). Each crowd vote falls in the people's categories: a vote for the
dataset's label is ``given``, one for the proposed label ``guessed``, any other digit or
"none" ``neither``. An unsure vote counts for its digit, as in the ``vote_share`` rule
(people gave no unsure flag). With ``c`` an image's counts ``(given, guessed, neither)``:

* **majority agreement**: over the images where people have a majority (at least 3 of their
  5 votes in one category), the share where the crowd's plurality category (its unique most
  frequent; a tie counts as disagreement) is that category;
* **dataset label called wrong**: a side calls the label wrong when fewer than half its votes
  name it, ``c_given / sum(c) < 1/2`` (people: at most 2 of 5); the shares of images the
  people, the crowd, and both call wrong;
* **entropy correlation**: Spearman (average ranks for ties) of the entropies, in nats, of
  the two sides' shares over the three categories.

>>> people = np.array([[5, 0, 0], [1, 4, 0], [2, 2, 1], [3, 0, 2]])
>>> crowd = np.array([[20, 1, 0], [3, 15, 2], [6, 14, 1], [4, 1, 15]])
>>> c = compare(people, crowd)
>>> c.n_majority, c.majority_agreement
(3, 0.6666666666666666)
>>> c.people_label_wrong, c.crowd_label_wrong, c.both_label_wrong
(0.5, 0.75, 0.5)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import DIGITS, MNIST_TEST_IDS, NONE_CHOICE
from soft_label_audit.human_labels import entropy
from soft_label_audit.metrics.alignment import spearman

#: the shipped reference, in ``soft_label_audit/crowd/reference_data/``
REFERENCE_FILE = "northcutt2021_mnist_mturk.json"
CITATION = "Northcutt, Athalye & Mueller (2021), MTurk validation of MNIST test images"
#: the people's three categories, in the order of every counts array here
CATEGORIES = ("given", "guessed", "neither")
#: workers per image in the release
VOTES_PER_IMAGE = 5


@dataclass(frozen=True)
class PeopleReferenceConfig:
    """The ``crowd_validity.people_reference`` block: whether the comparison runs, and its
    targets (see ``conf/base/parameters_annotation.yml`` for their reasons).

    >>> from soft_label_audit.parameter_tree import base_block
    >>> block = base_block("crowd_validity.people_reference")
    >>> PeopleReferenceConfig.from_params(block).min_majority_agreement
    0.8
    >>> PeopleReferenceConfig.from_params({**block, "enabled": "yes"})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: crowd_validity.people_reference.enabled must be true or false, got 'yes'
    """

    enabled: bool
    min_majority_agreement: float
    label_wrong_tolerance: float
    min_shared_label_wrong: float
    min_entropy_spearman: float

    @classmethod
    def from_params(
        cls, params: Any, path: str = "crowd_validity.people_reference"
    ) -> PeopleReferenceConfig:
        params = p.block(path, params)
        p.no_unknown(path, params, cls.__dataclass_fields__)
        get = lambda key: p.required(path, params, key)  # noqa: E731
        return cls(
            enabled=p.boolean(f"{path}.enabled", get("enabled")),
            min_majority_agreement=p.probability(
                f"{path}.min_majority_agreement", get("min_majority_agreement")
            ),
            label_wrong_tolerance=p.probability(
                f"{path}.label_wrong_tolerance", get("label_wrong_tolerance")
            ),
            min_shared_label_wrong=p.probability(
                f"{path}.min_shared_label_wrong", get("min_shared_label_wrong")
            ),
            min_entropy_spearman=p.number(
                f"{path}.min_entropy_spearman", get("min_entropy_spearman"), -1, 1
            ),
        )


def reference_path() -> Path:
    """The shipped reference file (package data)."""
    return Path(str(resources.files("soft_label_audit.crowd") / "reference_data" / REFERENCE_FILE))


def load_reference(path: str | Path | None = None) -> pd.DataFrame:
    """One row per image: ``item_id`` (60000 + the MNIST test index), ``mnist_test_index``,
    ``given_label``, ``guessed_label`` and the people's counts ``given``, ``guessed``,
    ``neither`` (``guessed`` is 0 where the two labels are the same: see the module doc).

    Every entry is checked: labels are digits, counts non-negative integers summing to
    :data:`VOTES_PER_IMAGE`, each image listed once.
    """
    path = Path(path) if path is not None else reference_path()
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON list of images")
    rows = []
    for i, entry in enumerate(entries):
        rows.append(_reference_row(entry, f"{path}: entry {i}"))
    table = pd.DataFrame(rows)
    dup = table["item_id"].duplicated()
    if dup.any():
        raise ValueError(f"{path}: images listed twice: {table.loc[dup, 'item_id'].tolist()[:5]}")
    return table


def _reference_row(entry: Any, where: str) -> dict[str, int]:
    try:
        index = entry["id"]
        given, guessed = entry["given_original_label"], entry["our_guessed_label"]
        counts = [entry["mturk"][c] for c in CATEGORIES]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"{where} lacks {exc} (needs id, given_original_label, "
            "our_guessed_label and mturk.given/guessed/neither)"
        ) from None
    ints = [index, given, guessed, *counts]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
        raise ValueError(f"{where}: id, labels and counts must be integers, got {ints}")
    if not 0 <= index < len(MNIST_TEST_IDS) or given not in DIGITS or guessed not in DIGITS:
        raise ValueError(f"{where}: id {index} or labels {given}, {guessed} out of range")
    n_given, n_guessed, n_neither = counts
    if given == guessed:
        if n_guessed != n_given:
            raise ValueError(
                f"{where}: the two labels are the same ({given}) but given {n_given} != "
                f"guessed {n_guessed}"
            )
        n_guessed = 0  # the release counts each such vote under both
    if min(counts) < 0 or n_given + n_guessed + n_neither != VOTES_PER_IMAGE:
        raise ValueError(
            f"{where}: counts {entry['mturk']} are not {VOTES_PER_IMAGE} votes of one worker each"
        )
    return {
        "item_id": MNIST_TEST_IDS[index],
        "mnist_test_index": index,
        "given_label": given,
        "guessed_label": guessed,
        "given": n_given,
        "guessed": n_guessed,
        "neither": n_neither,
    }


def people_counts(reference: pd.DataFrame) -> np.ndarray:
    """The people's (n_images, 3) counts over :data:`CATEGORIES`."""
    return reference[list(CATEGORIES)].to_numpy(np.int64)


def crowd_counts(votes: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """A long vote table mapped onto the people's categories, (n_images, 3) in the reference's
    order: a vote naming the dataset's label is ``given``, one naming the proposed label (when
    it differs) ``guessed``, any other digit or "none" ``neither``; unsure flags are ignored.

    >>> ref = pd.DataFrame({"item_id": [1, 2], "given_label": [4, 3], "guessed_label": [9, 3]})
    >>> votes = pd.DataFrame({"item_id": [1, 1, 1, 2, 2], "choice": ["4", "9", "none", "3", "8"]})
    >>> crowd_counts(votes, ref).tolist()
    [[1, 1, 1], [1, 0, 1]]
    """
    labels = reference.set_index("item_id")[["given_label", "guessed_label"]]
    unknown = sorted(set(votes["item_id"]) - set(labels.index))
    if unknown:
        raise ValueError(f"votes on images outside the reference: {unknown[:5]}")
    on = labels.reindex(votes["item_id"].to_numpy())
    choice = votes["choice"].astype(str).to_numpy()
    is_given = choice == on["given_label"].astype(str).to_numpy()
    is_guessed = ~is_given & (choice == on["guessed_label"].astype(str).to_numpy())
    category = np.where(is_given, 0, np.where(is_guessed, 1, 2))
    row = pd.Index(reference["item_id"]).get_indexer(votes["item_id"])
    counts = np.zeros((len(reference), len(CATEGORIES)), np.int64)
    np.add.at(counts, (row, category), 1)
    return counts


def majority(counts: np.ndarray, min_share: float = 0.5) -> np.ndarray:
    """Per image the category holding more than ``min_share`` of the votes, -1 where none does."""
    counts = np.asarray(counts, np.float64)
    share = counts / counts.sum(axis=1, keepdims=True)
    top = share.argmax(axis=1)
    return np.where(share.max(axis=1) > min_share, top, -1)


def plurality(counts: np.ndarray) -> np.ndarray:
    """Per image the unique most frequent category, -1 where the top count is tied."""
    counts = np.asarray(counts)
    top = counts.max(axis=1, keepdims=True)
    unique = (counts == top).sum(axis=1) == 1
    return np.where(unique, counts.argmax(axis=1), -1)


def label_called_wrong(counts: np.ndarray) -> np.ndarray:
    """Whether fewer than half of an image's votes name the dataset's label."""
    counts = np.asarray(counts, np.float64)
    return 2 * counts[:, 0] < counts.sum(axis=1)


def category_entropy(counts: np.ndarray) -> np.ndarray:
    """Entropy (nats) of an image's vote shares over the three categories."""
    counts = np.asarray(counts, np.float64)
    return entropy(counts / counts.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class PeopleComparison:
    """The crowd against the people on the reference images (see the module doc)."""

    n_images: int
    n_people_votes: int
    n_crowd_votes: int
    n_majority: int
    majority_agreement: float
    people_label_wrong: float
    crowd_label_wrong: float
    both_label_wrong: float
    entropy_spearman: float


def compare(people: np.ndarray, crowd: np.ndarray) -> PeopleComparison:
    """The comparison of two (n_images, 3) count arrays over :data:`CATEGORIES`, same order."""
    people, crowd = np.asarray(people, np.int64), np.asarray(crowd, np.int64)
    if people.shape != crowd.shape or people.ndim != 2 or people.shape[1] != len(CATEGORIES):
        raise ValueError(f"need two (n, 3) count arrays, got {people.shape} and {crowd.shape}")
    if (people.sum(axis=1) == 0).any() or (crowd.sum(axis=1) == 0).any():
        raise ValueError("every image needs votes on both sides")
    people_majority = majority(people)
    has_majority = people_majority >= 0
    agree = plurality(crowd)[has_majority] == people_majority[has_majority]
    people_wrong, crowd_wrong = label_called_wrong(people), label_called_wrong(crowd)
    return PeopleComparison(
        n_images=len(people),
        n_people_votes=int(people.sum()),
        n_crowd_votes=int(crowd.sum()),
        n_majority=int(has_majority.sum()),
        majority_agreement=float(agree.mean()) if has_majority.any() else float("nan"),
        people_label_wrong=float(people_wrong.mean()),
        crowd_label_wrong=float(crowd_wrong.mean()),
        both_label_wrong=float((people_wrong & crowd_wrong).mean()),
        entropy_spearman=spearman(category_entropy(people), category_entropy(crowd)),
    )


def reference_images(digits: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The reference's rows of ``digits`` (MNIST items), in the reference's order; every image
    must be there with the reference's dataset label."""
    mnist = digits[digits["source"] == "mnist"].set_index("item_id")
    missing = reference.loc[~reference["item_id"].isin(mnist.index), "item_id"].tolist()
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(reference)} reference images (MNIST test images, e.g. "
            f"{missing[:5]}) are not in `digits`; the comparison with people needs them "
            "(or set crowd_validity.people_reference.enabled=false)"
        )
    rows = mnist.loc[reference["item_id"].to_numpy()].reset_index()
    wrong = rows["original_label"].to_numpy() != reference["given_label"].to_numpy()
    if wrong.any():
        raise ValueError(
            f"MNIST labels of items {rows.loc[wrong, 'item_id'].tolist()[:5]} differ from the "
            "reference's given_original_label: digits does not follow the MNIST test ordering"
        )
    return rows


@dataclass(frozen=True)
class CrowdOnReference:
    """The crowd's votes on the reference images and the ids it remembered."""

    votes: pd.DataFrame
    memory_ids: np.ndarray
    comparison: PeopleComparison


def crowd_on_reference(
    digits: pd.DataFrame, simulated_crowd: dict[str, Any], reference: pd.DataFrame | None = None
) -> CrowdOnReference:
    """The crowd of ``simulated_crowd`` (the study's block) on the reference images, its
    memory built as the study's (:func:`soft_label_audit.crowd.collection.crowd_memory`) with
    the reference images left out, compared with the people."""
    from soft_label_audit.crowd import collection, simulated
    from soft_label_audit.data_sources.tables import images_from_column

    reference = load_reference() if reference is None else reference
    config = simulated.CrowdConfig.from_params(simulated_crowd)
    rows = reference_images(digits, reference)
    memory = collection.crowd_memory(
        digits, config, exclude_ids=reference["item_id"], excluded_what="reference images"
    )
    votes, _ = collection.annotate_with_memory(
        memory, rows["item_id"].to_numpy(), images_from_column(rows["image"]), config
    )
    comparison = compare(people_counts(reference), crowd_counts(votes, reference))
    return CrowdOnReference(votes, memory["item_id"].to_numpy(np.int64), comparison)


def reference_votes(reference: pd.DataFrame) -> pd.DataFrame:
    """The people's votes as a long vote table (``item_id, annotator_id, choice, unsure``):
    five rows per image. The release names no workers, so each vote gets its own annotator
    ``mturk_<MNIST test index>_<k>`` (k = 0..4: the given votes, then the guessed ones, then
    neither; not the order the workers answered). ``neither`` becomes "none": the workers
    rejected both offered labels without naming a digit. No vote is flagged unsure."""
    rows = []
    for ref in reference.itertuples(index=False):
        choices = (
            [str(ref.given_label)] * ref.given
            + [str(ref.guessed_label)] * ref.guessed
            + [NONE_CHOICE] * ref.neither
        )
        for k, choice in enumerate(choices):
            rows.append((ref.item_id, f"mturk_{ref.mnist_test_index}_{k}", choice, False))
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "choice", "unsure"])
