"""The simulated crowd: seeded determinism and human-like properties on real MNIST."""

import numpy as np
import pandas as pd
import pytest

from soft_label_audit.crowd import perception, simulated
from soft_label_audit.crowd.aggregation import aggregate
from soft_label_audit.crowd.statistics import item_statistics
from soft_label_audit.data_sources.tables import images_from_column

from .data import crowd_params, small_digits

#: a human mode needs half the votes and one sure vote
ONE_SURE_VOTE = {"min_vote_share": 0.5, "min_sure_votes": 1}


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
    items = item_statistics(h, study, votes, mode_support=ONE_SURE_VOTE).set_index("item_id")
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
        simulated.draw_annotators(
            simulated.CrowdConfig.from_params({**crowd_params(), "n_annotators": 5}),
            np.random.default_rng(0),
        )


def test_configuration_is_checked_with_the_one_template():
    from soft_label_audit.params import ParameterError

    def refused(change: dict, message: str) -> None:
        params = crowd_params()
        for dotted, value in change.items():
            block = params
            *parents, key = dotted.split(".")
            for name in parents:
                block = block[name]
            block[key] = value
        with pytest.raises(ParameterError) as err:
            simulated.CrowdConfig.from_params(params)
        assert str(err.value) == message

    refused({"n_annotators": -3}, "simulated_crowd.n_annotators must be a positive integer, got -3")
    refused(
        {"traits.blur_px": [1.0, 0.3]},
        "simulated_crowd.traits.blur_px must be an increasing pair [low, high], got [1.0, 0.3]",
    )
    refused(
        {"perception.memory_share": 1.5},
        "simulated_crowd.perception.memory_share must be a number in (0, 1], got 1.5",
    )
    refused(
        {"votes_per_item": {"min": 10, "max": 8}},
        "simulated_crowd.votes_per_item.max must be an integer >= votes_per_item.min (10), got 8",
    )
    with pytest.raises(ParameterError, match=r"simulated_crowd.traits has unknown settings"):
        simulated.CrowdConfig.from_params({**crowd_params(), "traits": {"blur": [0, 1]}})
    config = simulated.CrowdConfig.from_params(crowd_params())
    assert config.perception.n_components == (30, 50) and config.n_profiles == 3


def test_class_evidence_moves_gradually_between_the_two_digits_of_a_blend(setup):
    """With ``class_neighbours`` the evidence compares whole classes, so along a blend from a
    4 to a 9 the 9's share of the pair's evidence rises steadily and, halfway, both digits keep
    real evidence (a neighbour count would often give one of them nothing)."""
    from scipy import stats

    from soft_label_audit.data_sources import synthetic

    digits, _, _, _ = setup
    memory = digits[(digits["item_id"] >= 60_000) & (digits["item_id"] < 70_000)]
    observer = perception.NearestNeighbourObserver(class_neighbours=5, bandwidth_scale=0.15).fit(
        images_from_column(memory["image"]), memory["original_label"].to_numpy()
    )
    train = digits[(digits["item_id"] < 60_000) & (digits["source"] == "mnist")]
    images = images_from_column(train["image"]).astype(np.float64) / 255.0
    labels = train["original_label"].to_numpy()
    fours, nines = images[labels == 4][:5], images[labels == 9][:5]
    weights = np.linspace(0.0, 1.0, 11)
    a = np.repeat(fours, len(weights), axis=0)
    b = np.repeat(nines, len(weights), axis=0)
    w = np.tile(weights, len(fours))
    deskew = (
        perception.warp(a, *perception.moments_deskew(a)),
        perception.warp(b, *perception.moments_deskew(b)),
    )
    contrast = perception.stroke_contrast(deskew[0]), perception.stroke_contrast(deskew[1])
    blends = synthetic.blend_parents(*deskew, w, *contrast) / 255.0
    evidence, _ = observer.perceive(blends)
    share_of_nine = evidence[:, 9] / (evidence[:, 4] + evidence[:, 9])
    assert stats.spearmanr(share_of_nine, w).statistic > 0.8
    halfway = np.isclose(w, 0.5)
    assert (np.minimum(evidence[halfway, 4], evidence[halfway, 9]) > 0.02).mean() >= 0.6
