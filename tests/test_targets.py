"""Properties of the label-condition targets (soft_label_audit.targets)."""

from __future__ import annotations

import numpy as np
import pytest

from soft_label_audit import targets as tg

N = 400


def _human(rng: np.random.Generator, n: int = N) -> np.ndarray:
    """Crowd-like 11-slot labels: a third unanimous, the rest mixtures with some "none" mass."""
    out = np.zeros((n, 11))
    main = rng.integers(0, 10, n)
    out[np.arange(n), main] = 1.0
    mixed = rng.random(n) > 0.33
    votes = rng.multinomial(20, np.r_[np.full(10, 0.08), 0.2], mixed.sum()) / 20.0
    weight = rng.uniform(0.3, 0.99, (mixed.sum(), 1))  # spreads the entropies over every band
    out[mixed] = weight * out[mixed] + (1 - weight) * votes
    return out


@pytest.fixture
def inputs() -> tg.TargetInputs:
    rng = np.random.default_rng(42)
    human = _human(rng)
    h = tg.human_digits(human)
    mode = tg.human_argmax(h, np.zeros(N, int))
    original = np.where(rng.random(N) < 0.8, mode, rng.integers(0, 10, N))  # some mode shifts
    mode = tg.human_argmax(h, original)
    machine = np.full((N, 10), np.nan)
    machine[: N // 2] = rng.dirichlet(np.full(10, 0.3), N // 2)  # generator labels ("synthetic")
    logits = rng.normal(0, 3, (N, 10))
    logits[np.arange(N), original] += 6.0
    return tg.TargetInputs(
        original=original, human=human, mode=mode, machine=machine, teacher_logits=logits
    )


OPTIONS = {"human_soft_permuted": {"band_edges": [1e-6, 0.5, 1.0], "seed": 3}}


@pytest.mark.parametrize("condition", sorted(tg.BUILDERS))
def test_every_row_is_a_distribution(inputs, condition):
    t = tg.build_targets(condition, inputs, OPTIONS.get(condition))
    assert t.shape == (N, 10)
    assert (t >= 0).all()
    np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-12)


def test_hard_conditions(inputs):
    np.testing.assert_array_equal(
        tg.build_targets("original_hard", inputs).argmax(1), inputs.original
    )
    np.testing.assert_array_equal(
        tg.build_targets("human_mode_hard", inputs).argmax(1), inputs.mode
    )
    assert set(np.unique(tg.build_targets("human_mode_hard", inputs))) == {0.0, 1.0}


def test_mode_aligned_has_the_original_label_on_top_and_the_entropy_of_h(inputs):
    h = tg.build_targets("human_soft", inputs)
    t = tg.build_targets("human_soft_mode_aligned", inputs)
    rows = np.arange(N)
    assert np.all(t[rows, inputs.original] >= t.max(1) - 1e-12)
    unique_top = (np.sort(t, 1)[:, -1] - np.sort(t, 1)[:, -2]) > 1e-9
    np.testing.assert_array_equal(t.argmax(1)[unique_top], inputs.original[unique_top])
    np.testing.assert_allclose(tg.entropy(t), tg.entropy(h), atol=1e-12)
    shifted = inputs.mode != inputs.original
    assert shifted.sum() > 10  # the fixture has mode shifts to correct
    np.testing.assert_array_equal(t[~shifted], h[~shifted])


def test_permuted_keeps_the_entropy_distribution_within_each_band(inputs):
    edges = OPTIONS["human_soft_permuted"]["band_edges"]
    h = tg.build_targets("human_soft", inputs)
    t = tg.build_targets("human_soft_permuted", inputs, OPTIONS["human_soft_permuted"])
    bands = tg.entropy_bands(tg.entropy(h), edges)
    assert len(np.unique(bands)) == 4
    for band in np.unique(bands):
        members = bands == band
        np.testing.assert_allclose(
            np.sort(tg.entropy(t[members])), np.sort(tg.entropy(h[members])), atol=1e-12
        )
    np.testing.assert_array_equal(tg.entropy_bands(tg.entropy(t), edges), bands)
    assert np.all(t[np.arange(N), inputs.original] >= t.max(1) - 1e-12)
    mixed = tg.entropy(h) > 0.5
    assert not np.allclose(
        t[mixed], tg.swap_mode_and_original(h, inputs.mode, inputs.original)[mixed]
    )


def test_permuted_is_seeded(inputs):
    opts = OPTIONS["human_soft_permuted"]
    a = tg.build_targets("human_soft_permuted", inputs, opts)
    np.testing.assert_array_equal(a, tg.build_targets("human_soft_permuted", inputs, opts))
    assert not np.array_equal(
        a, tg.build_targets("human_soft_permuted", inputs, opts | {"seed": 4})
    )


def test_matched_smoothing_reaches_the_mean_human_entropy(inputs):
    target = tg.entropy(inputs.h).mean()
    t = tg.build_targets("label_smoothing_matched", inputs)
    assert tg.entropy(t).mean() == pytest.approx(target, rel=0.01)
    assert tg.entropy(t).mean() == pytest.approx(target, rel=1e-8)
    np.testing.assert_array_equal(t.argmax(1), inputs.original)
    assert np.ptp(tg.entropy(t)) < 1e-12  # the same epsilon for every item


def test_machine_soft_is_the_tempered_teacher_on_every_item_not_the_generator_label(inputs):
    # half the fixture's items have generator labels (synthetic blends): machine_soft is a
    # model's uncertainty there too, the teacher's softmax(z / T), never the mixture weights
    t = tg.build_targets("machine_soft", inputs)
    target = tg.entropy(inputs.h).mean()  # every item is a training item here
    assert tg.entropy(t).mean() == pytest.approx(target, rel=1e-6)
    temperature = tg.temperature_for_entropy(inputs.teacher_logits, target)
    np.testing.assert_allclose(t, tg.tempered_softmax(inputs.teacher_logits, temperature))
    np.testing.assert_array_equal(t.argmax(1), inputs.teacher_logits.argmax(1))
    generated = ~np.isnan(inputs.machine).any(1)
    assert generated.sum() == N // 2
    assert not np.allclose(t[generated], inputs.machine[generated], atol=0.05)


def test_machine_soft_matches_the_mean_human_entropy_of_the_synthetic_training_items(inputs):
    # a synthetic source alone: every item has a generator label, and still the targets are
    # the teacher's, their mean entropy on the training items that of the human labels there
    rows = ~np.isnan(inputs.machine).any(1)
    train = np.arange(rows.sum()) % 3 != 0
    x = tg.TargetInputs(
        original=inputs.original[rows],
        human=inputs.human[rows],
        machine=inputs.machine[rows],
        teacher_logits=inputs.teacher_logits[rows],
        train=train,
    )
    t = tg.build_targets("machine_soft", x)
    assert tg.entropy(t[train]).mean() == pytest.approx(tg.entropy(x.h[train]).mean(), rel=1e-6)
    machine = x.machine / x.machine.sum(1, keepdims=True)
    assert np.abs(t - machine).max() > 0.1
    temperature = tg.temperature_for_entropy(x.teacher_logits[train], tg.entropy(x.h[train]).mean())
    np.testing.assert_allclose(t, tg.tempered_softmax(x.teacher_logits, temperature))


def test_machine_soft_needs_teacher_logits_on_every_item(inputs):
    inputs.teacher_logits = None
    with pytest.raises(ValueError, match="have no teacher logits"):
        tg.build_targets("machine_soft", inputs)
    logits = np.zeros((N, 10))
    logits[5] = np.nan  # an item the teacher did not label, even one with a generator label
    inputs.teacher_logits = logits
    with pytest.raises(ValueError, match=r"rows \[5\] \(of 1\) have no teacher logits"):
        tg.build_targets("machine_soft", inputs)


def test_generator_soft_is_the_mixture_where_there_is_one_and_one_hot_elsewhere(inputs):
    t = tg.build_targets("generator_soft", inputs)
    generated = ~np.isnan(inputs.machine).any(1)
    machine = inputs.machine[generated]
    np.testing.assert_allclose(t[generated], machine / machine.sum(1, keepdims=True))
    np.testing.assert_array_equal(t[~generated], tg.one_hot(inputs.original[~generated]))
    assert tg.builder_for("generator_soft").needs == ()
    # without any generator label (an MNIST source) it is original_hard
    mnist = tg.TargetInputs(original=inputs.original, machine=np.full((N, 10), np.nan))
    np.testing.assert_array_equal(
        tg.build_targets("generator_soft", mnist), tg.build_targets("original_hard", mnist)
    )


@pytest.mark.parametrize("entropy_target", [0.05, 0.6, 1.9])
def test_temperature_and_epsilon_solvers(entropy_target):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (300, 10))
    temperature = tg.temperature_for_entropy(logits, entropy_target)
    assert tg.entropy(tg.tempered_softmax(logits, temperature)).mean() == pytest.approx(
        entropy_target, rel=1e-6
    )
    eps = tg.smoothing_epsilon_for_entropy(entropy_target)
    assert tg.smoothing_entropy(eps) == pytest.approx(entropy_target, rel=1e-6)


def test_unreachable_entropy_is_refused():
    with pytest.raises(ValueError, match="outside the reachable range"):
        tg.smoothing_epsilon_for_entropy(np.log(10) + 0.1)


def test_none_slot_rules():
    human = np.array([[0.6, 0.2] + [0.0] * 8 + [0.2], [0.0] * 10 + [1.0]])
    renorm = tg.human_digits(human, "renormalise")
    np.testing.assert_allclose(renorm[0, :2], [0.75, 0.25])
    np.testing.assert_allclose(renorm[1], np.full(10, 0.1))  # all "none": uniform
    spread = tg.human_digits(human, "spread")
    np.testing.assert_allclose(spread[0, :3], [0.62, 0.22, 0.02])
    with pytest.raises(ValueError, match="none_slot"):
        tg.human_digits(human, "drop")
    with pytest.raises(ValueError, match="sum to one"):
        tg.human_digits(human * 0.9)
    with pytest.raises(ValueError, match="11 slots"):
        tg.human_digits(np.full((1, 10), 0.1))


def test_human_argmax_ties_go_to_the_original_label_then_the_lowest_digit():
    h = np.array([[0.4, 0.4, 0.2] + [0.0] * 7] * 2)
    np.testing.assert_array_equal(tg.human_argmax(h, np.array([1, 5])), [1, 0])


def test_inconsistent_human_mode_is_refused():
    human = np.zeros((2, 11))
    human[:, 3] = 1.0
    with pytest.raises(ValueError, match="human_mode is neither a maximum"):
        tg.TargetInputs(original=np.array([3, 3]), human=human, mode=np.array([3, 4]))


def test_unknown_condition_names_the_registry():
    with pytest.raises(KeyError, match="no target builder"):
        tg.builder_for("nonsense")


# ------------------------------------------------------------------ fitted on training items only

ALL_OPTIONS = {**OPTIONS, "human_soft_permuted": {"band_edges": [1e-6, 0.5, 1.0], "seed": 3}}


def _with_split(
    inputs: tg.TargetInputs, train: np.ndarray, human: np.ndarray, logits: np.ndarray
) -> tg.TargetInputs:
    h = tg.human_digits(human)
    return tg.TargetInputs(
        original=inputs.original,
        human=human,
        mode=tg.human_argmax(h, inputs.original),
        machine=inputs.machine,
        teacher_logits=logits,
        train=train,
    )


@pytest.mark.parametrize("condition", sorted(tg.BUILDERS))
def test_val_and_test_human_labels_never_change_a_training_target(inputs, condition):
    rng = np.random.default_rng(7)
    train = rng.random(N) < 0.6
    before = tg.build_targets(
        condition,
        _with_split(inputs, train, inputs.human, inputs.teacher_logits),
        ALL_OPTIONS.get(condition),
    )
    human = inputs.human.copy()
    human[~train] = _human(rng, int((~train).sum()))  # other people, other answers
    human[~train & (rng.random(N) < 0.3)] = np.eye(11)[10]  # some all-"none" items
    logits = inputs.teacher_logits.copy()
    logits[~train] = rng.normal(0, 5, ((~train).sum(), 10))
    after = tg.build_targets(
        condition, _with_split(inputs, train, human, logits), ALL_OPTIONS.get(condition)
    )
    np.testing.assert_array_equal(after[train], before[train])


def test_recipe_statistics_come_from_training_items(inputs):
    train = np.arange(N) % 2 == 1
    x = _with_split(inputs, train, inputs.human, inputs.teacher_logits)
    t = tg.build_targets("label_smoothing_matched", x)
    assert tg.entropy(t).mean() == pytest.approx(tg.entropy(x.h[train]).mean(), rel=1e-8)
    m = tg.build_targets("machine_soft", x)
    assert tg.entropy(m[train]).mean() == pytest.approx(tg.entropy(x.h[train]).mean(), rel=1e-6)


def test_permutation_donors_are_training_items(inputs):
    train = np.arange(N) % 3 != 0
    x = _with_split(inputs, train, inputs.human, inputs.teacher_logits)
    t = tg.build_targets("human_soft_permuted", x, ALL_OPTIONS["human_soft_permuted"])
    train_profiles = {tuple(np.round(np.sort(row)[::-1], 12)) for row in x.h[train]}
    for row in t[~train]:
        assert tuple(np.round(np.sort(row)[::-1], 12)) in train_profiles


# ------------------------------------------------------------------ controls of equal strength


def test_mass_matched_smoothing_puts_as_much_mass_off_the_label_as_h(inputs):
    train = np.arange(N) < 300
    x = _with_split(inputs, train, inputs.human, inputs.teacher_logits)
    t = tg.build_targets("label_smoothing_mass_matched", x)
    target = tg.off_label_mass(x.h[train]).mean()
    assert tg.off_label_mass(t).mean() == pytest.approx(target, rel=1e-9)
    np.testing.assert_array_equal(t.argmax(1), x.original)
    # the entropy-matched control is the weaker regulariser: less mass off the label
    weaker = tg.build_targets("label_smoothing_matched", x)
    assert tg.off_label_mass(weaker).mean() < target


def test_mode_aligned_puts_o_on_top_even_where_the_mode_is_unsupported(inputs):
    h = inputs.h
    argmax = tg.human_argmax(h, inputs.original)
    moved = argmax != inputs.original
    assert moved.sum() > 10
    unsupported = tg.TargetInputs(
        original=inputs.original, human=inputs.human, mode=inputs.original.copy()
    )
    t = tg.build_targets("human_soft_mode_aligned", unsupported)
    assert np.all(t[np.arange(N), inputs.original] >= t.max(1) - 1e-12)
    np.testing.assert_allclose(tg.entropy(t), tg.entropy(h), atol=1e-12)
    # the unsupported mode keeps the original label in human_mode_hard
    np.testing.assert_array_equal(
        tg.build_targets("human_mode_hard", unsupported).argmax(1), inputs.original
    )


def test_human_soft_puts_its_top_mass_on_the_human_mode_and_keeps_the_entropy_of_h(inputs):
    h = inputs.h
    argmax = tg.human_argmax(h, inputs.original)
    unsupported = tg.TargetInputs(  # every shift unsupported: m = o
        original=inputs.original, human=inputs.human, mode=inputs.original.copy()
    )
    for x in (inputs, unsupported):
        t = tg.build_targets("human_soft", x)
        rows = np.arange(N)
        assert np.all(t[rows, x.mode] >= t.max(1) - 1e-12)
        np.testing.assert_allclose(tg.entropy(t), tg.entropy(h), atol=1e-12)
        keep = argmax == x.mode  # where the votes back h's argmax, the target is h
        np.testing.assert_array_equal(t[keep], h[keep])
    assert (argmax != inputs.original).sum() > 10  # the fixture has shifts to undo
