"""Choosing the study subset for re-annotation and splitting it into train/val/test.

Synthetic items are blended from two parent MNIST images drawn with replacement, so
two items can share a parent and look alike. The split is a group split: items linked by a
shared parent (directly or through a chain of items) form one group, and a group goes to one
split whole, so no parent image feeds two splits.

Each source is drawn and split on its own seed streams (:func:`source_rng`): a source's items
and split depend only on its own settings and ``digits.study.seed``, so changing one source
(more MNIST items, another pool) leaves the other source's items and split as they were.

``digits.study.items_from`` says where the items come from: ``draw`` (the default study:
``n_per_source`` items per source, stratified by label) or ``votes`` (exactly the items of the
raw vote file, ``annotation.raw_path``; the ``own_votes`` environment). Either way the split is
drawn over the source's chosen items, stratified, seeded and group-aware.

``digits.study.label_noise`` is the positive control (:func:`flip_training_labels`): a share of
the MNIST training-split items get a wrong ``original_label`` (a confusable digit, seeded),
while the crowd votes on the true image. At ``share: 0`` (the default) ``study_items`` is the
same table, byte for byte, as without the block."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import N_MNIST, SOURCES, SPLITS
from soft_label_audit.errors import UserError

#: values of ``digits.study.items_from``
ITEMS_FROM = ("draw", "votes")


#: the wrong label a flipped item gets (``digits.study.label_noise``): each digit's most
#: human-like confusion (4/9, 3/5/8, 1/7, 2/7, 0/6), so a flip is a plausible labelling slip
CONFUSABLE = {0: 6, 1: 7, 2: 7, 3: 5, 4: 9, 5: 3, 6: 0, 7: 1, 8: 3, 9: 4}
#: the source and split whose items ``label_noise`` flips; val, test and the scoring pool keep
#: their true labels, so every score is against the truth
NOISY_SOURCE, NOISY_SPLIT = "mnist", "train"


class StudyItemsError(UserError, ValueError):
    """The study's items cannot be chosen as configured (an empty source, a pool too small,
    a vote file naming ids of no source)."""


@dataclass(frozen=True)
class LabelNoise:
    """The ``digits.study.label_noise`` block: the share of the MNIST training items whose
    ``original_label`` is flipped, and the seed of the flipped items' draw.

    >>> LabelNoise.from_params({"share": 0.2, "seed": 5})
    LabelNoise(share=0.2, seed=5)
    >>> LabelNoise.from_params({"share": 1.5, "seed": 5})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: digits.study.label_noise.share must be a number in [0, 1], got 1.5
    """

    share: float
    seed: int

    @classmethod
    def from_params(cls, params, path: str = "digits.study.label_noise") -> LabelNoise:
        params = p.block(path, params)
        p.no_unknown(path, params, cls.__dataclass_fields__)
        return cls(
            share=p.probability(f"{path}.share", p.required(path, params, "share")),
            seed=p.non_negative_int(f"{path}.seed", p.required(path, params, "seed")),
        )


@dataclass(frozen=True)
class StudyConfig:
    """The ``digits.study`` block: items per source, their candidate id ranges, the split.

    >>> from soft_label_audit.parameter_tree import base_block
    >>> block = base_block("digits.study")
    >>> StudyConfig.from_params({**block, "n_per_source": {"mnist": 10}}).n_per_source
    {'mnist': 10}
    >>> StudyConfig.from_params({**block, "n_per_source": {"mnist": 1.5}})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: digits.study.n_per_source.mnist must be a non-negative integer, got 1.5
    """

    n_per_source: dict[str, int]
    pool_item_ids: dict[str, tuple[int, int] | None]
    split_fractions: dict[str, float]
    seed: int
    items_from: str
    label_noise: LabelNoise

    @property
    def from_votes(self) -> bool:
        """Whether the study's items are exactly those of the vote file."""
        return self.items_from == "votes"

    @classmethod
    def from_params(cls, params, path: str = "digits.study") -> StudyConfig:
        params = p.block(path, params)
        p.no_unknown(path, params, cls.__dataclass_fields__)
        counts = p.block(f"{path}.n_per_source", p.required(path, params, "n_per_source"))
        p.no_unknown(f"{path}.n_per_source", counts, SOURCES)
        n_per_source = {
            str(p.choice(f"{path}.n_per_source", s, SOURCES)): p.non_negative_int(
                f"{path}.n_per_source.{s}", n
            )
            for s, n in counts.items()
        }
        given_pools = p.block(f"{path}.pool_item_ids", p.required(path, params, "pool_item_ids"))
        p.no_unknown(f"{path}.pool_item_ids", given_pools, SOURCES)
        pools = {
            source: _id_range(
                f"{path}.pool_item_ids.{source}",
                p.required(f"{path}.pool_item_ids", given_pools, source),
            )
            for source in n_per_source
        }
        given = p.block(f"{path}.split_fractions", p.required(path, params, "split_fractions"))
        p.no_unknown(f"{path}.split_fractions", given, SPLITS)
        fractions = {
            split: p.probability(
                f"{path}.split_fractions.{split}",
                p.required(f"{path}.split_fractions", given, split),
            )
            for split in SPLITS
        }
        if set(fractions) != set(SPLITS) or not np.isclose(sum(fractions.values()), 1.0):
            raise p.fail(f"{path}.split_fractions", "train, val and test summing to 1", dict(given))
        return cls(
            n_per_source=n_per_source,
            pool_item_ids=pools,
            split_fractions=fractions,
            seed=p.non_negative_int(f"{path}.seed", p.required(path, params, "seed")),
            items_from=str(
                p.choice(f"{path}.items_from", p.required(path, params, "items_from"), ITEMS_FROM)
            ),
            label_noise=LabelNoise.from_params(
                p.required(path, params, "label_noise"), f"{path}.label_noise"
            ),
        )


def _id_range(path: str, bounds) -> tuple[int, int] | None:
    """``[lo, hi)`` of candidate item ids, or ``None`` (no restriction)."""
    if bounds is None:
        return None
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise p.fail(path, "null or a pair [lo, hi) of item ids", bounds)
    lo = p.non_negative_int(f"{path}[0]", bounds[0])
    hi = p.non_negative_int(f"{path}[1]", bounds[1])
    if hi <= lo:
        raise p.fail(path, "an increasing pair [lo, hi) of item ids", list(bounds))
    return lo, hi


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` items with class counts as equal as the pool allows.

    Each class gets ``n // k`` items, the remainder going to classes drawn at random; a
    class short of items gives its shortfall to the others.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if n > len(labels):
        raise ValueError(f"asked for {n} items from a pool of {len(labels)}")
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    quota = {c: n // len(classes) for c in classes}
    for c in rng.choice(classes, size=n % len(classes), replace=False):
        quota[c] += 1
    # move the quota of classes that are too small to classes with room, round robin
    while True:
        excess = sum(max(0, quota[c] - len(pools[c])) for c in classes)
        if excess == 0:
            break
        for c in classes:
            quota[c] = min(quota[c], len(pools[c]))
        roomy = [c for c in classes if quota[c] < len(pools[c])]
        for i in range(excess):
            quota[roomy[i % len(roomy)]] += 1
    picked = np.concatenate([pools[c][: quota[c]] for c in classes])
    return np.sort(picked)


def split_items(
    labels: np.ndarray, fractions: dict[str, float], rng: np.random.Generator
) -> np.ndarray:
    """Assign each item a split name, stratified by label (every item its own group)."""
    return split_groups(labels, np.arange(len(labels)), fractions, rng)


PARENT_COLUMNS = ("parent_a", "parent_b")


def parent_groups(parents: np.ndarray) -> np.ndarray:
    """Group number per item: items sharing any parent id (transitively) share a group.

    ``parents`` is (n, k) of parent ids; negative ids mean "no parent" (MNIST items, which are
    their own group). Groups are numbered in order of their first item.

    >>> parent_groups(np.array([[1, 2], [3, 4], [2, 5], [-1, -1], [5, 6]])).tolist()
    [0, 1, 0, 2, 0]
    """
    parents = np.asarray(parents, np.int64).reshape(len(parents), -1)
    n = len(parents)
    root = np.arange(n)

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = int(root[i])
        return i

    first_item: dict[int, int] = {}
    for i, row in enumerate(parents):
        for parent in row[row >= 0]:
            j = first_item.setdefault(int(parent), i)
            ri, rj = find(i), find(j)
            if ri != rj:
                root[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, groups = np.unique(roots, return_inverse=True)
    return groups.astype(np.int64)


def split_groups(
    labels: np.ndarray, groups: np.ndarray, fractions: dict[str, float], rng: np.random.Generator
) -> np.ndarray:
    """Assign each item a split, whole groups at a time, stratified by label.

    A group's stratum is the label of its first item. Within a stratum the groups are taken in
    random order and each goes to the split furthest below its target count (``fraction`` x the
    stratum's items, test and val rounded, train the rest), so with groups of one item the
    counts equal the targets exactly.
    """
    total = sum(fractions[s] for s in SPLITS)
    if set(fractions) != set(SPLITS) or not np.isclose(total, 1.0) or min(fractions.values()) < 0:
        raise ValueError(
            f"split fractions must give train, val and test, summing to 1: {fractions}"
        )
    labels = np.asarray(labels)
    groups = np.asarray(groups, np.int64)
    out = np.empty(len(labels), dtype=object)
    group_ids, first = np.unique(groups, return_index=True)
    stratum = labels[first]
    order = ("test", "val", "train")
    for c in np.unique(stratum):
        members = np.isin(groups, group_ids[stratum == c])
        n_c = int(members.sum())
        n_test = int(round(fractions["test"] * n_c))
        n_val = int(round(fractions["val"] * n_c))
        deficit = {"test": n_test, "val": n_val, "train": n_c - n_test - n_val}
        for g in rng.permutation(group_ids[stratum == c]):
            items = groups == g
            split = max(order, key=lambda s: deficit[s])  # first of the largest deficits
            out[items] = split
            deficit[split] -= int(items.sum())
    return out


def source_rng(seed: int, source: str, part: str) -> np.random.Generator:
    """The seed stream of one source's ``part`` ("draw" or "split"): independent of every
    other source's, so a source's items and split depend on its own settings alone."""
    return np.random.default_rng(
        [int(seed), zlib.crc32(source.encode()), zlib.crc32(part.encode())]
    )


def split_source(
    picked: pd.DataFrame, source: str, split_fractions: dict[str, float], seed: int
) -> pd.DataFrame:
    """One source's chosen items (sorted by item_id) with their split: stratified by original
    label, whole parent groups at a time, on the source's own split stream."""
    picked = picked.sort_values("item_id", kind="stable")
    if all(c in picked.columns for c in PARENT_COLUMNS):
        groups = parent_groups(picked[list(PARENT_COLUMNS)].to_numpy(np.int64))
    else:
        groups = np.arange(len(picked))
    rng = source_rng(seed, source, "split")
    return pd.DataFrame(
        {
            "item_id": picked["item_id"].to_numpy(np.int64),
            "source": source,
            "split": split_groups(
                picked["original_label"].to_numpy(), groups, split_fractions, rng
            ),
            "original_label": picked["original_label"].to_numpy(np.int64),
        }
    )


def _stacked(parts: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(parts, ignore_index=True).sort_values("item_id", ignore_index=True)
    out["split"] = out["split"].astype(str)
    return out


def select_study_items(
    digits: pd.DataFrame,
    n_per_source: dict[str, int],
    pool_ids: dict[str, tuple[int, int] | None],
    split_fractions: dict[str, float],
    seed: int,
) -> pd.DataFrame:
    """The study subset: per source, ``n`` items stratified by original label, then split.

    ``pool_ids[source]`` optionally restricts the candidates to ``lo <= item_id < hi``.
    The split keeps items that share a parent image (columns ``parent_a``, ``parent_b`` of
    ``digits`` when present) in one split (:func:`parent_groups`, :func:`split_groups`).
    Each source draws on its own streams (:func:`source_rng`).
    Returns item_id, source, split, original_label, sorted by item_id.
    """
    parts = []
    for source, n in n_per_source.items():
        pool = digits[digits["source"] == source].sort_values("item_id", kind="stable")
        bounds = pool_ids.get(source)
        if bounds is not None:
            lo, hi = bounds
            pool = pool[(pool["item_id"] >= lo) & (pool["item_id"] < hi)]
        if int(n) == 0:
            continue
        if int(n) > len(pool):
            raise StudyItemsError(
                f"digits.study.n_per_source.{source} asks for {int(n)} items, but the pool of "
                f"source {source!r} holds {len(pool)}"
                + (f" (digits.study.pool_item_ids.{source}: {list(bounds)})" if bounds else ""),
                fix=f"lower digits.study.n_per_source.{source} or widen its pool_item_ids",
            )
        rng = source_rng(seed, source, "draw")
        picked = pool.iloc[stratified_sample(pool["original_label"].to_numpy(), int(n), rng)]
        parts.append(split_source(picked, source, split_fractions, seed))
    if not parts:
        raise StudyItemsError("the study selects no items", fix="set digits.study.n_per_source")
    return _stacked(parts)


def flip_training_labels(study_items: pd.DataFrame, noise: LabelNoise) -> pd.DataFrame:
    """The positive control: ``round(share * n)`` of the ``n`` MNIST training-split items get
    the wrong label ``CONFUSABLE[true label]``; val, test and synthetic items keep theirs.

    The flipped items are drawn stratified by true label (:func:`stratified_sample`) on their
    own stream of ``noise.seed``, after the split (which stays as drawn on the true labels).
    With ``share > 0`` two columns are added: ``true_label`` and ``label_flipped``
    (``original_label`` is the label the study gives the models); with ``share == 0`` the
    table is returned unchanged, without them.

    >>> items = pd.DataFrame({"item_id": range(6), "source": "mnist",
    ...                       "split": ["train"] * 4 + ["val", "test"],
    ...                       "original_label": [4, 4, 3, 3, 4, 3]})
    >>> out = flip_training_labels(items, LabelNoise(share=0.5, seed=0))
    >>> out[["original_label", "true_label", "label_flipped"]].to_numpy().tolist()
    [[9, 4, True], [4, 4, False], [5, 3, True], [3, 3, False], [4, 4, False], [3, 3, False]]
    """
    if noise.share == 0:
        return study_items
    out = study_items.copy()
    true = out["original_label"].to_numpy(np.int64)
    eligible = np.flatnonzero(
        (out["source"].to_numpy() == NOISY_SOURCE) & (out["split"].to_numpy() == NOISY_SPLIT)
    )
    n_flip = int(round(noise.share * len(eligible)))
    rng = source_rng(noise.seed, NOISY_SOURCE, "label_noise")
    flipped = np.zeros(len(out), dtype=bool)
    flipped[eligible[stratified_sample(true[eligible], n_flip, rng)]] = True
    wrong = np.array([CONFUSABLE[int(label)] for label in true], dtype=np.int64)
    out["original_label"] = np.where(flipped, wrong, true)
    out["true_label"] = true
    out["label_flipped"] = flipped
    return out


def source_id_ranges(first_synthetic_id: int, n_synthetic: int) -> dict[str, range]:
    """The item ids each source can have: MNIST's 70k ordering and the synthetic items'
    ``digits.synthetic.first_item_id`` + ``n_items``."""
    return {
        "mnist": range(0, N_MNIST),
        "synthetic": range(int(first_synthetic_id), int(first_synthetic_id) + int(n_synthetic)),
    }


def _ranges_text(ranges: Mapping[str, range]) -> str:
    return ", ".join(f"{s} {r.start}..{r.stop - 1}" for s, r in ranges.items())


def sources_of_ids(
    item_ids: Iterable[int], ranges: Mapping[str, range], file: str
) -> dict[str, list[int]]:
    """The voted item ids by source (sorted, once each); an id of no source's range stops the
    run (:class:`StudyItemsError`) naming the first few."""
    ids = sorted({int(i) for i in item_ids})
    by_source: dict[str, list[int]] = {s: [] for s in ranges}
    outside = []
    for i in ids:
        source = next((s for s, r in ranges.items() if i in r), None)
        (outside if source is None else by_source[source]).append(i)
    if outside:
        raise StudyItemsError(
            f"{file}: {len(outside)} item id(s) are not an item of any source: "
            f"{', '.join(map(str, outside[:5]))}{' ...' if len(outside) > 5 else ''} "
            f"(item ids: {_ranges_text(ranges)})",
            fix="correct the item_id column of the vote file",
        )
    return {s: v for s, v in by_source.items() if v}


def voted_study_items(
    digits: pd.DataFrame,
    item_ids: Iterable[int],
    split_fractions: dict[str, float],
    seed: int,
    file: str = "the vote file",
) -> pd.DataFrame:
    """The study ``digits.study.items_from: votes``: exactly the voted items, each source
    split over its own voted items (:func:`split_source`). Returns the columns of
    :func:`select_study_items`."""
    wanted = pd.Index(sorted({int(i) for i in item_ids}), dtype="int64")
    chosen = digits[digits["item_id"].isin(wanted)]
    missing = wanted.difference(pd.Index(chosen["item_id"]))
    if len(missing):
        raise StudyItemsError(
            f"{file}: {len(missing)} voted item id(s) are not in `digits`: {missing[:5].tolist()}",
            fix="correct the item_id column of the vote file",
        )
    if chosen.empty:
        raise StudyItemsError(f"{file} names no items", fix="add votes to the file")
    parts = [
        split_source(chosen[chosen["source"] == source], source, split_fractions, seed)
        for source in dict.fromkeys(chosen["source"].astype(str))
    ]
    return _stacked(parts)


def check_every_split(study_items: pd.DataFrame, sources: Iterable[str], where: str) -> None:
    """Every source of the study needs train, val and test items; else the run stops here,
    before any training, naming the source and its counts."""
    for source in sources:
        counts = study_items.loc[study_items["source"] == source, "split"].value_counts()
        empty = [split for split in SPLITS if counts.get(split, 0) == 0]
        if empty:
            held = {split: int(counts.get(split, 0)) for split in SPLITS}
            raise StudyItemsError(
                f"{where} leaves source {source!r} without {'/'.join(empty)} items "
                f"(items by split: {held})",
                fix=f"give {source!r} more items (or votes), or drop it from study.sources",
            )


def vote_file_sources(params: Mapping) -> tuple[str, dict[str, list[int]]]:
    """For ``digits.study.items_from: votes``, read at start-up (before any node): the vote
    file ``annotation.raw_path`` and its item ids by source. Stops the run
    (:class:`StudyItemsError`, :class:`~soft_label_audit.params.ParameterError`) when the
    source is not ``raw_file``, the file is missing or an id is of no source."""
    from soft_label_audit.crowd import sources
    from soft_label_audit.crowd.validation import is_integer_like, to_int

    annotation = params.get("annotation") or {}
    source = annotation.get("source")
    defining = sources.study_defining_sources()
    if source not in defining:
        raise p.ParameterError(
            f"digits.study.items_from is 'votes', which reads the study's items from a vote file "
            f"(annotation.source {' or '.join(defining)}), but annotation.source is {source!r}",
            fix='run `kedro run --env own_votes --params "annotation.raw_path=FILE"`, or set '
            "digits.study.items_from: draw",
        )
    entry = sources.get(source)
    path = annotation.get(entry.path_setting)
    if not path or not Path(str(path)).is_file():
        raise StudyItemsError(
            f"digits.study.items_from: votes reads annotation.{entry.path_setting}, and "
            f"{path!r} is not a file",
            fix=f'pass the vote file: --params "annotation.{entry.path_setting}=FILE"',
        )
    frame = entry.read_file(path)
    if "item_id" not in frame.columns:
        return str(path), {}  # the annotation stage's validation names the missing column
    ids = [to_int(v) for v in frame["item_id"] if is_integer_like(v)]
    synthetic = (params.get("digits") or {}).get("synthetic") or {}
    ranges = source_id_ranges(synthetic.get("first_item_id", 0), synthetic.get("n_items", 0))
    return str(path), sources_of_ids(ids, ranges, str(path))
