"""Nodes of the `digits` pipeline: thin adapters over ``soft_label_audit.data_sources``."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from soft_label_audit.crowd.sources import AnnotationInput  # noqa: E402
from soft_label_audit.data_sources import figures, pool, study, synthetic, tables  # noqa: E402

logger = logging.getLogger(__name__)


def build_mnist_table(mnist_raw: dict[str, np.ndarray]) -> pd.DataFrame:
    """All 70,000 MNIST items in the 70k ordering: training images 0..59999, then test images."""
    return tables.mnist_table(
        mnist_raw["train_images"],
        mnist_raw["train_labels"],
        mnist_raw["test_images"],
        mnist_raw["test_labels"],
    )


def make_synthetic_digits(mnist_raw: dict[str, np.ndarray], params: dict[str, Any]) -> pd.DataFrame:
    """Ambiguous digits blended from two MNIST training images (``source = "synthetic"``)."""
    config = synthetic.AmbiguityConfig.from_params(params)
    made = synthetic.generate_ambiguous(
        mnist_raw["train_images"], mnist_raw["train_labels"], config
    )
    return tables.synthetic_table(made, config.first_item_id)


def combine_digits(mnist_digits: pd.DataFrame, synthetic_digits: pd.DataFrame) -> pd.DataFrame:
    """The `digits` table: MNIST then synthetic items; item ids must not collide."""
    return tables.combine(mnist_digits, synthetic_digits)


def choose_study_items(digits: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The items chosen for re-annotation with their train/val/test split (see data_sources.study)."""
    config = study.StudyConfig.from_params(params)
    items = study.select_study_items(
        digits,
        n_per_source=config.n_per_source,
        pool_ids=config.pool_item_ids,
        split_fractions=config.split_fractions,
        seed=config.seed,
    )
    study.check_every_split(items, items["source"].unique(), "digits.study")
    return _with_label_noise(items, config.label_noise)


def _with_label_noise(items: pd.DataFrame, noise: study.LabelNoise) -> pd.DataFrame:
    """``digits.study.label_noise`` (the positive control), logged when it flips labels."""
    items = study.flip_training_labels(items, noise)
    if "label_flipped" in items.columns:
        logger.warning(
            "positive control: %d of the MNIST training items carry a flipped original_label "
            "(digits.study.label_noise.share %s); the crowd sees their true images",
            int(items["label_flipped"].sum()),
            noise.share,
        )
    return items


def study_items_from_votes(
    digits: pd.DataFrame, annotation_input: AnnotationInput, params: dict[str, Any]
) -> pd.DataFrame:
    """``digits.study.items_from: votes``: the study is exactly the items of the vote file,
    split per source over its voted items (see data_sources.study.voted_study_items)."""
    config = study.StudyConfig.from_params(params)
    votes = annotation_input.frame
    ids = pd.to_numeric(votes["item_id"], errors="coerce").dropna().astype("int64")
    items = study.voted_study_items(
        digits, ids, config.split_fractions, config.seed, str(annotation_input.path)
    )
    study.check_every_split(
        items, items["source"].unique(), f"the vote file {annotation_input.path}"
    )
    for source, group in items.groupby("source"):
        logger.info(
            "study items from %s: %d %s items (%s)",
            annotation_input.path,
            len(group),
            source,
            ", ".join(f"{s} {n}" for s, n in group["split"].value_counts().items()),
        )
    return _with_label_noise(items, config.label_noise)


def build_scoring_pool(
    mnist_raw: dict[str, np.ndarray],
    digits: pd.DataFrame,
    study_items: pd.DataFrame,
    synthetic_params: dict[str, Any],
    pool_params: dict[str, Any],
) -> pd.DataFrame:
    """The held-out scoring pool ``pool_digits``: MNIST training images and further blends
    outside the study, no model's training data (see data_sources.pool)."""
    return pool.build_pool(
        digits,
        study_items,
        mnist_raw["train_images"],
        mnist_raw["train_labels"],
        synthetic.AmbiguityConfig.from_params(synthetic_params),
        pool.PoolConfig.from_params(pool_params),
    )


def plot_synthetic_samples(synthetic_digits: pd.DataFrame, params: dict[str, Any]) -> plt.Figure:
    """A grid of generated items titled with their machine soft labels (the two non-zero classes)."""
    config = figures.SampleGridConfig.from_params(params)
    sample = synthetic_digits.head(config.rows * config.cols)
    return figures.plot_samples(
        tables.images_from_column(sample["image"]),
        sample["class_a"].to_numpy(),
        sample["class_b"].to_numpy(),
        sample["mix_weight"].to_numpy(float),
        config,
    )
