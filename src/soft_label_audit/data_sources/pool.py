"""The held-out scoring pool: unannotated items that no model trains on and no crowd remembers.

Accuracy, NLL, Brier and ECE against the original label need no human votes, so every trained
run can also be scored on many more items than the annotated test items. The pool
(``pool_digits``, one row per item, the columns of ``digits``) holds:

* **MNIST items**: ``n_items`` MNIST *training* images (ids 0..59999), drawn seeded and
  stratified by label (:func:`.study.stratified_sample`) among those that are neither study
  items nor parents of a synthetic study item. Never MNIST *test* images (60000..69999): they
  are the simulated crowd's memory.
* **synthetic items**: ``n_items`` further blends made by the study's generator
  (:func:`.synthetic.generate_ambiguous`, the ``digits.synthetic`` settings: class pairs,
  weights, typical parents), labelled as it labels study items (``machine_soft_label`` =
  ``(1 - w) e_a + w e_b``, ``original_label`` its argmax), from parents that are neither
  study items nor parents of a synthetic study item, with ids ``first_item_id ..
  first_item_id + n_items - 1``.

A model that must stay apart from the pool (the large teacher of ``labels``) leaves out
:func:`held_out_ids`: the pool's MNIST items and its blends' parents. The pool excludes the
study items of ``study_items``; a study whose items come from elsewhere (the released
annotations choose their own) must drop pool items that are study items where it scores.

A pool size of 0 is allowed and gives no items of that source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import MNIST_TRAIN_IDS, N_MNIST
from soft_label_audit.data_sources import study, synthetic, tables

#: the stream of each source's draw under ``digits.pool.seed``
MNIST_STREAM, SYNTHETIC_STREAM = 0, 1


@dataclass(frozen=True)
class PoolConfig:
    """The ``digits.pool`` block: items per source, the synthetic items' first id, the seed.

    >>> from soft_label_audit.parameter_tree import base_block
    >>> PoolConfig.from_params(base_block("digits.pool")).mnist_n_items
    10000
    >>> PoolConfig.from_params({**base_block("digits.pool"), "synthetic": {"n_items": 5,
    ...     "first_item_id": 60000}})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: digits.pool.synthetic.first_item_id must be an integer >= 70000, got 60000
    """

    mnist_n_items: int
    synthetic_n_items: int
    synthetic_first_item_id: int
    seed: int

    @classmethod
    def from_params(cls, params, path: str = "digits.pool") -> PoolConfig:
        params = p.block(path, params)
        p.no_unknown(path, params, ("mnist", "synthetic", "seed"))
        mnist = p.block(f"{path}.mnist", p.required(path, params, "mnist"))
        p.no_unknown(f"{path}.mnist", mnist, ("n_items",))
        made = p.block(f"{path}.synthetic", p.required(path, params, "synthetic"))
        p.no_unknown(f"{path}.synthetic", made, ("n_items", "first_item_id"))
        return cls(
            mnist_n_items=p.non_negative_int(
                f"{path}.mnist.n_items", p.required(f"{path}.mnist", mnist, "n_items")
            ),
            synthetic_n_items=p.non_negative_int(
                f"{path}.synthetic.n_items", p.required(f"{path}.synthetic", made, "n_items")
            ),
            # synthetic ids never fall in the 70k MNIST ordering
            synthetic_first_item_id=p.integer(
                f"{path}.synthetic.first_item_id",
                p.required(f"{path}.synthetic", made, "first_item_id"),
                minimum=N_MNIST,
            ),
            seed=p.non_negative_int(f"{path}.seed", p.required(path, params, "seed")),
        )

    def synthetic_ids(self) -> range:
        """The ids of the pool's synthetic items."""
        first = self.synthetic_first_item_id
        return range(first, first + self.synthetic_n_items)


def study_reserved_ids(digits: pd.DataFrame, study_items: pd.DataFrame) -> np.ndarray:
    """Sorted MNIST training ids the study depends on: its MNIST items and the parents of its
    synthetic items (``parent_a``, ``parent_b`` of ``digits``)."""
    ids = study_items["item_id"].to_numpy(np.int64)
    chosen = digits[digits["item_id"].isin(ids) & (digits["source"] == "synthetic")]
    if len(chosen) and not all(c in digits.columns for c in study.PARENT_COLUMNS):
        raise ValueError("digits lacks parent_a/parent_b: the synthetic study items' parents")
    parents = chosen[list(study.PARENT_COLUMNS)].to_numpy(np.int64).ravel() if len(chosen) else []
    reserved = np.union1d(ids, np.asarray(parents, np.int64))
    return reserved[np.isin(reserved, MNIST_TRAIN_IDS)]


def held_out_ids(pool_digits: pd.DataFrame) -> np.ndarray:
    """Sorted MNIST ids a model kept apart from the pool must not learn from: the pool's
    MNIST items and the parents of its synthetic items."""
    mnist = pool_digits.loc[pool_digits["source"] == "mnist", "item_id"].to_numpy(np.int64)
    made = pool_digits[pool_digits["source"] == "synthetic"]
    parents = made[list(study.PARENT_COLUMNS)].to_numpy(np.int64).ravel() if len(made) else []
    return np.union1d(mnist, np.asarray(parents, np.int64))


def choose_mnist_items(
    digits: pd.DataFrame, reserved: np.ndarray, n_items: int, seed: int
) -> pd.DataFrame:
    """``n_items`` rows of ``digits``: MNIST training images outside ``reserved``, stratified
    by label (seeded), sorted by item_id."""
    ids = digits["item_id"]
    candidates = digits[
        (digits["source"] == "mnist") & ids.isin(MNIST_TRAIN_IDS) & ~ids.isin(reserved)
    ].sort_values("item_id")
    if n_items > len(candidates):
        raise ValueError(
            f"the pool asks for {n_items} MNIST items, only {len(candidates)} training images "
            "are outside the study: lower digits.pool.mnist.n_items"
        )
    rng = np.random.default_rng([seed, MNIST_STREAM])
    picked = study.stratified_sample(candidates["original_label"].to_numpy(), n_items, rng)
    return candidates.iloc[picked].reset_index(drop=True)


def make_synthetic_items(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    reserved: np.ndarray,
    generator: synthetic.AmbiguityConfig,
    config: PoolConfig,
) -> pd.DataFrame:
    """The pool's blends (``synthetic_table`` rows): the generator's settings with the pool's
    size and seed, parents outside ``reserved`` (MNIST training ids)."""
    n = config.synthetic_n_items
    if n == 0:
        return tables.synthetic_table(_no_blends(), config.synthetic_first_item_id)
    seed = int(np.random.SeedSequence([config.seed, SYNTHETIC_STREAM]).generate_state(1)[0])
    settings = dataclasses.replace(generator, n_items=n, seed=seed)
    excluded = np.isin(np.asarray(MNIST_TRAIN_IDS[: len(train_images)]), reserved)
    made = synthetic.generate_ambiguous(train_images, train_labels, settings, excluded=excluded)
    return tables.synthetic_table(made, config.synthetic_first_item_id)


def _no_blends() -> dict[str, np.ndarray]:
    empty = np.zeros(0, np.int64)
    return {
        "images": np.zeros((0, 28, 28), np.uint8),
        "machine_soft_label": np.zeros((0, 10)),
        "original_label": empty,
        "class_a": empty,
        "class_b": empty,
        "mix_weight": np.zeros(0),
        "source_a": empty,
        "source_b": empty,
    }


def build_pool(
    digits: pd.DataFrame,
    study_items: pd.DataFrame,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    generator: synthetic.AmbiguityConfig,
    config: PoolConfig,
) -> pd.DataFrame:
    """The ``pool_digits`` table: MNIST pool items then synthetic ones (module doc), in the
    columns of ``digits``; its synthetic ids must collide with no item of ``digits``."""
    reserved = study_reserved_ids(digits, study_items)
    mnist = choose_mnist_items(digits, reserved, config.mnist_n_items, config.seed)
    made = make_synthetic_items(train_images, train_labels, reserved, generator, config)
    clash = np.intersect1d(made["item_id"], digits["item_id"])
    if len(clash):
        raise ValueError(
            f"pool synthetic ids collide with digits ids {clash[:5].tolist()} ({len(clash)} in "
            "all): move digits.pool.synthetic.first_item_id"
        )
    columns = list(made.columns)
    parts = [part[columns] for part in (mnist, made) if len(part)]
    if not parts:
        return made
    return pd.concat(parts, ignore_index=True)
