"""The simulated crowd: seeded determinism and human-like properties on real MNIST."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.crowd import perception, simulated
from soft_label_audit.crowd.aggregation import aggregate
from soft_label_audit.crowd.statistics import item_statistics
from soft_label_audit.data_sources.tables import images_from_column

from .data import crowd_params, small_digits


@pytest.fixture(scope="module")
def setup(mnist_arrays):
    digits, study = small_digits(mnist_arrays, n_mnist=200, n_synthetic=100)
    memory = digits[(digits["item_id"] >= 60_000) & (digits["item_id"] < 70_000)]
    observer = perception.NearestNeighbourObserver(k_neighbours=20, bandwidth_scale=1.0).fit(
        images_from_column(memory["image"]), memory["original_label"].to_numpy()
    )
    images = images_from_column(study.merge(digits[["item_id", "image"]], on="item_id")["image"])
    return digits, study, observer, images


def run(setup, seed=3):
    _, study, observer, images = setup
    crowd = simulated.SimulatedCrowd(
        simulated.CrowdConfig.from_params(crowd_params(seed)), observer
    )
    return crowd.annotate(study["item_id"].to_numpy(), images), crowd.annotators_


def test_observer_reads_mnist_training_digits(setup, mnist_arrays):
    _, study, observer, images = setup
    evidence, atypicality = observer.perceive(images.astype(np.float32) / 255.0)
    mnist = (study["source"] == "mnist").to_numpy()
    accuracy = (evidence[mnist].argmax(1) == study["original_label"].to_numpy()[mnist]).mean()
    assert accuracy > 0.9
    np.testing.assert_allclose(evidence.sum(1), 1.0)
    assert (atypicality >= 0).all()


def test_seeded_and_deterministic(setup):
    a, traits_a = run(setup, seed=3)
    b, traits_b = run(setup, seed=3)
    c, _ = run(setup, seed=4)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(traits_a, traits_b)
    assert not a["choice"].equals(c["choice"]) or not a["annotator_id"].equals(c["annotator_id"])


def test_votes_follow_the_contract(setup):
    votes, traits = run(setup)
    _, study, _, _ = setup
    assert votes.groupby("item_id").size().between(8, 10).all()
    assert not votes.duplicated(["item_id", "annotator_id"]).any()
    assert set(votes["item_id"]) == set(study["item_id"])
    assert traits["careless"].sum() == 2
    assert (votes["response_time"] > 0).all()


def test_human_like_properties(setup):
    votes, traits = run(setup)
    _, study, _, _ = setup
    h = aggregate(votes, "vote_share")
    items = item_statistics(h, study, votes).set_index("item_id")
    by_source = items.groupby("source")
    unanimous = by_source["unanimous"].mean()
    entropy = by_source["human_entropy"].mean()
    assert unanimous["mnist"] > 0.7
    assert unanimous["mnist"] > unanimous["synthetic"] + 0.2
    assert entropy["synthetic"] > 2 * entropy["mnist"]
    shift = items.loc[items["source"] == "mnist", "mode_shift"].mean()
    assert shift < 0.1
    # "none" votes fall mostly on synthetic items although they are a third of the study
    source_of = study.set_index("item_id")["source"]
    none_sources = source_of.reindex(votes.loc[votes["choice"] == "none", "item_id"])
    assert (none_sources == "synthetic").mean() > 0.5
    # unsure flags sit where annotators disagree
    assert (
        items.loc[~items["unanimous"].astype(bool), "pct_unsure"].mean()
        > 3 * items.loc[items["unanimous"].astype(bool), "pct_unsure"].mean()
    )
    # wrong votes on MNIST follow visually similar digits
    mnist_votes = votes.merge(study, on="item_id").query(
        "source == 'mnist' and choice != 'none' and not unsure"
    )
    wrong = mnist_votes[mnist_votes["choice"] != mnist_votes["original_label"].astype(str)]
    careless = set(traits.loc[traits["careless"], "annotator_id"])
    wrong = wrong[~wrong["annotator_id"].isin(careless)]
    similar = {
        frozenset(p)
        for p in [
            (4, 9),
            (3, 5),
            (3, 8),
            (5, 8),
            (1, 7),
            (2, 7),
            (7, 9),
            (0, 6),
            (5, 6),
            (8, 9),
            (2, 3),
        ]
    }
    pairs = [
        frozenset((int(a), int(b)))
        for a, b in zip(wrong["original_label"], wrong["choice"], strict=True)
    ]
    assert len(pairs) > 0
    # far more often than if wrong votes fell on random digit pairs (11 of 45 pairs), and the
    # most frequent confusion is one of them (on the full study: 4/9, then 7/9, 0/6, 3/5, 2/7)
    assert np.mean([p in similar for p in pairs]) > 1.5 * len(similar) / 45
    assert pd.Series(pairs).value_counts().index[0] in similar


def test_careless_annotators_agree_least(setup):
    votes, traits = run(setup)
    from soft_label_audit.crowd.statistics import annotator_statistics

    stats = annotator_statistics(votes, aggregate(votes, "vote_share"), agreement_below=0.8).merge(
        traits, on="annotator_id"
    )
    assert (
        stats.loc[stats["careless"], "agreement_with_aggregate"].max()
        < stats.loc[~stats["careless"], "agreement_with_aggregate"].median()
    )


def test_too_few_annotators_for_the_votes():
    with pytest.raises(ValueError, match="distinct votes"):
        simulated.draw_annotators(simulated.CrowdConfig(n_annotators=5), np.random.default_rng(0))
