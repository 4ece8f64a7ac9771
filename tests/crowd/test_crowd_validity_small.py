"""The crowd validity checks on a small configuration: the generator and the simulated crowd
of the default configuration (base parameters, smaller sizes), end to end on real MNIST."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from soft_label_audit.columns import MNIST_TEST_IDS
from soft_label_audit.crowd import perception, simulated, validity
from soft_label_audit.crowd.aggregation import aggregate
from soft_label_audit.crowd.statistics import item_statistics
from soft_label_audit.data_sources import synthetic, tables

ROOT = Path(__file__).resolve().parents[2]


def _base(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "base" / f"parameters_{name}.yml").read_text())


@pytest.fixture(scope="module")
def checks(mnist_arrays):
    digits_params = _base("digits")["digits"]
    annotation = _base("annotation")
    crowd = annotation["simulated_crowd"]
    crowd = {**crowd, "n_annotators": 24, "votes_per_item": {"min": 20, "max": 22}}
    config = simulated.CrowdConfig.from_params(crowd)
    train_x, train_y = mnist_arrays["train_images"], mnist_arrays["train_labels"]
    gen = synthetic.AmbiguityConfig.from_params({**digits_params["synthetic"], "n_items": 240})
    made = synthetic.generate_ambiguous(train_x[:20000], train_y[:20000], gen)
    syn = tables.synthetic_table(made, gen.first_item_id)
    rng = np.random.default_rng(0)
    mnist_ids = np.sort(rng.choice(np.arange(20000, 60000), size=400, replace=False))
    mnist = tables.mnist_table(train_x, train_y, mnist_arrays["test_images"][:0], train_y[:0])
    study = pd.concat([mnist.iloc[mnist_ids], syn], ignore_index=True)
    study["split"] = "train"
    observers = perception.observers_from_config(
        mnist_arrays["test_images"][:4000],
        mnist_arrays["test_labels"][:4000],
        dataclasses.replace(config.perception, n_profiles=3),
        config.seed,
    )
    images = tables.images_from_column(study["image"])
    votes = simulated.SimulatedCrowd(config, observers).annotate(
        study["item_id"].to_numpy(), images
    )
    h = aggregate(votes, "vote_share")
    stats = item_statistics(
        h,
        study,
        votes,
        none_slot="renormalise",
        mode_support=annotation["annotation"]["mode_support"],
    )
    pool = mnist.iloc[np.arange(20000)]
    targets = validity.ValidityTargets.from_params(
        {**annotation["crowd_validity"], "classifier": {"n_train": 3000, "C": 5.0, "seed": 0}}
    )
    table = validity.crowd_validity(
        stats,
        h,
        votes,
        study,
        (tables.images_from_column(pool["image"]), pool["original_label"].to_numpy()),
        targets,
        "renormalise",
    )
    assert not set(study["item_id"]) & set(MNIST_TEST_IDS)
    return table.set_index("check")


def test_every_check_holds_on_a_small_configuration(checks):
    """400 MNIST items are too few to place the mode-shift share inside [0.3%, 3%] (and to
    judge the shifts); the default configuration's table checks those. Here the share must
    stay below the upper end."""
    checked = ["ambiguity_correlation", "contrast_vs_uncertainty", "votes_per_item"]
    failing = checks.loc[[*checked, "mnist_vote_agreement"]].query("not holds")
    assert failing.empty, failing.to_string()
    assert checks.loc["mnist_mode_shift_share", "value"] <= 0.03


def test_uncertainty_follows_ambiguity_with_a_margin(checks):
    assert checks.loc["ambiguity_correlation", "value"] >= 0.45
    assert (
        checks.loc["contrast_vs_uncertainty", "value"]
        < checks.loc["ambiguity_correlation", "value"] - 0.1
    )
