"""The trainer on small slices of real MNIST: paired design, determinism, dynamics, vectorised path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from soft_label_audit.parameter_tree import base_block
from soft_label_audit.progress import progress_enabled
from soft_label_audit.trainer import (
    CURVE_NAMES,
    ModelConfig,
    TrainConfig,
    TrainData,
    batch_orders,
    build_model,
    cross_fit_teacher,
    predict_logits,
    soft_cross_entropy,
    train_runs,
    train_teacher,
)

MODEL = ModelConfig(channels=(4, 8), hidden=16)
EYE = np.eye(10, dtype=np.float32)


@pytest.fixture(scope="module")
def data(mnist_arrays) -> TrainData:
    x, y = mnist_arrays["train_images"], mnist_arrays["train_labels"].astype(np.int64)
    return TrainData(x[:160], y[:160], x[160:220], y[160:220], x[220:260])


def _config(**kw) -> TrainConfig:
    base = TrainConfig.from_params({**base_block("training"), "epochs": 3})
    fixed = dict(batch_size=32, lr=3e-3, num_threads=1, vectorise="never", progress=False)
    return replace(base, **(fixed | kw))


def _soft(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = 0.6 * EYE[labels] + 0.4 * rng.dirichlet(np.ones(10), len(labels))
    return t.astype(np.float32)


def test_initial_weights_depend_on_the_seed_only():
    a, b, c = build_model(MODEL, 7), build_model(MODEL, 7), build_model(MODEL, 8)
    for (name, pa), pb, pc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values()
    ):
        assert torch.equal(pa, pb), name
        if name.endswith("weight"):
            assert not torch.equal(pa, pc), name


def test_batch_order_depends_on_seed_and_item_count_only():
    assert np.array_equal(batch_orders(3, 50, 4), batch_orders(3, 50, 4))
    assert not np.array_equal(batch_orders(3, 50, 4), batch_orders(4, 50, 4))
    orders = batch_orders(3, 50, 4)
    assert orders.shape == (4, 50)
    assert all(sorted(row) == list(range(50)) for row in orders)


def test_paired_runs_start_alike_and_part_with_their_targets(data):
    """Same seed, different targets: the first batch is predicted by identical initial weights."""
    rng = np.random.default_rng(0)
    hard, soft = EYE[data.train_labels], _soft(data.train_labels, rng)
    cfg = _config()
    res = train_runs(
        data, np.stack([hard, soft]), np.stack([EYE[data.val_labels]] * 2), [5, 5], MODEL, cfg
    )
    first = batch_orders(5, len(data.train_images), cfg.epochs)[0, : cfg.batch_size]
    later = batch_orders(5, len(data.train_images), cfg.epochs)[0, cfg.batch_size :]
    np.testing.assert_array_equal(res.dynamics[0, 0, first], res.dynamics[1, 0, first])
    assert not np.allclose(res.dynamics[0, 0, later], res.dynamics[1, 0, later])


def test_cpu_runs_are_deterministic(data):
    targets = np.stack([EYE[data.train_labels]] * 2)
    val = np.stack([EYE[data.val_labels]] * 2)
    a = train_runs(data, targets, val, [0, 1], MODEL, _config(num_threads=2))
    b = train_runs(data, targets, val, [0, 1], MODEL, _config(num_threads=2))
    np.testing.assert_array_equal(a.dynamics, b.dynamics)
    np.testing.assert_array_equal(a.test_logits, b.test_logits)
    for name in CURVE_NAMES:
        np.testing.assert_array_equal(a.curves[name], b.curves[name])
    assert not np.array_equal(a.test_logits[0], a.test_logits[1])  # the two seeds differ


def test_shapes_and_distributions(data):
    k, cfg = 2, _config()
    res = train_runs(
        data,
        np.stack([EYE[data.train_labels]] * k),
        np.stack([EYE[data.val_labels]] * k),
        [0, 1],
        MODEL,
        cfg,
    )
    n, e = len(data.train_images), cfg.epochs
    assert res.dynamics.shape == (k, e, n, 10) and res.dynamics.dtype == np.float32
    np.testing.assert_allclose(res.dynamics.sum(-1), 1.0, atol=1e-5)
    assert res.test_probs.shape == (k, len(data.test_images), 10)
    for name in CURVE_NAMES:
        # without TrainData.val_modes the human-mode curves are NaN
        finite = np.isfinite(res.curves[name]).all() != name.endswith("_human_mode")
        assert res.curves[name].shape == (k, e) and finite, name
    assert len(res.state_dicts) == k
    assert res.sample_updates == k * e * n
    # the cosine schedule decays to zero at the last step
    assert res.curves["lr"][0, -1] == pytest.approx(0.0, abs=1e-12)


def test_training_learns(data):
    cfg = _config(epochs=6)
    res = train_runs(
        data, EYE[data.train_labels][None], EYE[data.val_labels][None], [0], MODEL, cfg
    )
    assert res.curves["train_loss"][0, -1] < 0.6 * res.curves["train_loss"][0, 0]
    assert res.curves["val_acc"][0, -1] > 0.5


def _with_pool(data: TrainData, pool: np.ndarray) -> TrainData:
    return replace(data, pool_images=pool)


def _misled(labels: np.ndarray) -> np.ndarray:
    """Targets one digit off the original label: the validation loss against the original
    label rises as the run learns them, so its best epoch comes before the last."""
    return EYE[(labels + 1) % 10]


def test_vectorised_path_matches_the_plain_loop(data, mnist_arrays):
    rng = np.random.default_rng(1)
    targets = np.stack(
        [EYE[data.train_labels], _soft(data.train_labels, rng), _misled(data.train_labels)]
    )
    val = np.stack([EYE[data.val_labels]] * 3)
    seeds = [0, 0, 1]
    config = _config()
    pooled = _with_pool(data, mnist_arrays["test_images"][:30])
    plain = train_runs(pooled, targets, val, seeds, MODEL, replace(config, vectorise="never"))
    vec = train_runs(pooled, targets, val, seeds, MODEL, replace(config, vectorise="always"))
    assert vec.vectorised and not plain.vectorised
    np.testing.assert_allclose(vec.dynamics, plain.dynamics, atol=2e-4)
    np.testing.assert_array_equal(vec.best_epochs, plain.best_epochs)
    assert (plain.best_epochs < config.epochs).any(), plain.best_epochs  # the case is exercised
    names = ("test_logits", "test_logits_best", "pool_logits", "pool_logits_best")
    for name in (*names, "val_logits", "val_logits_best"):
        a, b = getattr(vec, name), getattr(plain, name)
        assert a.shape == b.shape and a.dtype == np.float32, name
        np.testing.assert_allclose(a, b, atol=2e-3, rtol=1e-3, err_msg=name)
    for name in CURVE_NAMES:
        np.testing.assert_allclose(vec.curves[name], plain.curves[name], atol=2e-4, err_msg=name)
    for a, b in zip(vec.state_dicts, plain.state_dicts):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], atol=2e-4, err_msg=name)


def test_soft_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 10, generator=g)
    targets = torch.softmax(torch.randn(6, 10, generator=g), -1)
    expected = torch.nn.functional.cross_entropy(logits, targets)
    assert torch.allclose(soft_cross_entropy(logits, targets), expected, atol=1e-6)


def test_bad_shapes_are_refused(data):
    with pytest.raises(ValueError, match="train_targets"):
        train_runs(data, EYE[data.train_labels], EYE[data.val_labels][None], [0], MODEL, _config())
    with pytest.raises(ValueError, match="seeds"):
        train_runs(
            data, EYE[data.train_labels][None], EYE[data.val_labels][None], [0, 1], MODEL, _config()
        )


def test_torch_settings_are_restored(data):
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    train_runs(
        data,
        EYE[data.train_labels][None],
        EYE[data.val_labels][None],
        [0],
        MODEL,
        _config(epochs=1),
    )
    assert (
        torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det
    )


def test_progress_is_quiet_in_ci_and_off_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled("auto")
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert not progress_enabled("auto")
    assert progress_enabled(True) and not progress_enabled(False)
    with pytest.raises(ValueError):
        progress_enabled("loud")


def test_teacher_learns_hard_labels(mnist_arrays):
    x, y = mnist_arrays["train_images"][:700], mnist_arrays["train_labels"][:700]
    teacher = train_teacher(
        x, y, MODEL, _config(epochs=6, batch_size=32, lr=5e-3), n_train=500, n_val=200, seed=0
    )
    assert teacher.val_acc > 0.6
    logits = teacher.logits(mnist_arrays["test_images"][:50], device="cpu")
    assert logits.shape == (50, 10)
    assert (logits.argmax(1) == mnist_arrays["test_labels"][:50]).mean() > 0.6


def test_parallel_runs_on_cpu_threads_match_one_after_another(data):
    targets = np.stack([EYE[data.train_labels]] * 3)
    val = np.stack([EYE[data.val_labels]] * 3)
    together = train_runs(
        data, targets, val, [0, 1, 2], MODEL, _config(num_threads=2, parallel_runs=2)
    )
    in_turn = train_runs(
        data, targets, val, [0, 1, 2], MODEL, _config(num_threads=2, parallel_runs=1)
    )
    np.testing.assert_allclose(together.dynamics, in_turn.dynamics, atol=1e-5)
    np.testing.assert_allclose(together.test_logits, in_turn.test_logits, atol=1e-4)


@pytest.mark.parametrize("vectorise", ["never", "always"])
def test_validation_curves_measure_every_condition_against_the_original_label_and_the_mode(
    data, vectorise
):
    rng = np.random.default_rng(1)
    modes = np.where(
        rng.random(len(data.val_labels)) < 0.3, (data.val_labels + 1) % 10, data.val_labels
    )
    with_modes = TrainData(
        data.train_images,
        data.train_labels,
        data.val_images,
        data.val_labels,
        data.test_images,
        val_modes=modes,
    )
    val_soft = _soft(data.val_labels, rng)
    config = _config(epochs=2, vectorise=vectorise)
    hard = train_runs(
        with_modes,
        EYE[data.train_labels][None],
        EYE[data.val_labels][None],
        [0],
        MODEL,
        config,
        record_dynamics=False,
    )
    soft = train_runs(
        with_modes,
        _soft(data.train_labels, rng)[None],
        val_soft[None],
        [0],
        MODEL,
        config,
        record_dynamics=False,
    )
    for result, own in ((hard, EYE[data.val_labels]), (soft, val_soft)):
        logits = predict_logits(result.state_dicts[0], MODEL, data.val_images, device="cpu")
        logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1).numpy()
        rows = np.arange(len(logp))
        curves = {name: values[0, -1] for name, values in result.curves.items()}
        assert curves["val_loss"] == pytest.approx(-logp[rows, data.val_labels].mean(), rel=1e-4)
        assert curves["val_acc"] == pytest.approx((logits.argmax(1) == data.val_labels).mean())
        assert curves["val_loss_human_mode"] == pytest.approx(-logp[rows, modes].mean(), rel=1e-4)
        assert curves["val_acc_human_mode"] == pytest.approx((logits.argmax(1) == modes).mean())
        assert curves["val_loss_own_target"] == pytest.approx(-(own * logp).sum(1).mean(), rel=1e-4)
    # the soft run's own objective differs from the shared yardstick
    assert abs(soft.curves["val_loss_own_target"][0, -1] - soft.curves["val_loss"][0, -1]) > 0.05


def test_cross_fitted_teacher_labels_no_item_with_a_model_that_saw_it(mnist_arrays, monkeypatch):
    from soft_label_audit.trainer import teacher as teacher_module

    x, y = mnist_arrays["train_images"][:90], mnist_arrays["train_labels"][:90].astype(np.int64)
    is_train = np.arange(90) < 60
    seen = []
    real_train_runs = teacher_module.train_runs

    def spy(data, *args, **kwargs):
        seen.append({im.tobytes() for im in data.train_images})
        return real_train_runs(data, *args, **kwargs)

    monkeypatch.setattr(teacher_module, "train_runs", spy)
    result = cross_fit_teacher(x, y, is_train, MODEL, _config(epochs=1), k_folds=3, seed=0)
    assert len(seen) == 3 and sorted(set(result.fold[is_train])) == [0, 1, 2]
    assert (result.fold[~is_train] == -1).all()
    for f, fit in enumerate(seen):
        held = np.flatnonzero(result.fold == f)
        assert not {x[i].tobytes() for i in held} & fit  # the fold's own model never saw it
        np.testing.assert_allclose(
            result.logits[held],
            predict_logits(result.state_dicts[f], MODEL, x[held], device="cpu"),
            atol=1e-5,
        )
        assert (
            not {x[i].tobytes() for i in np.flatnonzero(~is_train)} & fit
        )  # val/test never trained on
    mean = np.mean(
        [predict_logits(s, MODEL, x[~is_train], device="cpu") for s in result.state_dicts], axis=0
    )
    np.testing.assert_allclose(result.logits[~is_train], mean, atol=1e-4)


@pytest.mark.parametrize("vectorise", ["never", "always"])
def test_best_epoch_predictions_are_those_of_the_lowest_validation_loss(
    data, mnist_arrays, vectorise
):
    """With a constant learning rate, a run stopped after its best epoch predicts what the
    longer run's best-epoch predictions say; the final predictions and the weights are the
    final epoch's."""
    pool = mnist_arrays["test_images"][:25]
    pooled = _with_pool(data, pool)
    targets = np.stack([EYE[data.train_labels], _misled(data.train_labels)])
    val = np.stack([EYE[data.val_labels]] * 2)
    config = _config(epochs=4, schedule="constant", vectorise=vectorise)
    res = train_runs(pooled, targets, val, [0, 1], MODEL, config, record_dynamics=False)
    expected = np.nanargmin(res.curves["val_loss"], axis=1) + 1
    np.testing.assert_array_equal(res.best_epochs, expected)
    assert res.best_epochs.dtype == np.int64
    assert res.pool_logits.shape == res.pool_logits_best.shape == (2, len(pool), 10)
    assert res.test_probs_best.shape == res.test_probs.shape
    np.testing.assert_allclose(res.pool_probs_best.sum(-1), 1.0, atol=1e-5)
    assert res.best_epochs[0] == config.epochs and res.best_epochs[1] < config.epochs
    for k, seed in enumerate((0, 1)):
        final = predict_logits(res.state_dicts[k], MODEL, pool, device="cpu")
        np.testing.assert_allclose(res.pool_logits[k], final, atol=1e-4)
        short = train_runs(
            pooled,
            targets[k : k + 1],
            val[k : k + 1],
            [seed],
            MODEL,
            replace(config, epochs=int(res.best_epochs[k])),
            record_dynamics=False,
        )
        np.testing.assert_allclose(res.test_logits_best[k], short.test_logits[0], atol=1e-4)
        np.testing.assert_allclose(res.pool_logits_best[k], short.pool_logits[0], atol=1e-4)
        # the validation items, on which a post-hoc temperature is fitted, at both epochs
        final_val = predict_logits(res.state_dicts[k], MODEL, data.val_images, device="cpu")
        np.testing.assert_allclose(res.val_logits[k], final_val, atol=1e-4)
        np.testing.assert_allclose(res.val_logits_best[k], short.val_logits[0], atol=1e-4)
        if res.best_epochs[k] < config.epochs:
            assert not np.allclose(res.test_logits_best[k], res.test_logits[k], atol=1e-3)
        else:
            np.testing.assert_array_equal(res.test_logits_best[k], res.test_logits[k])


def test_without_validation_items_the_best_epoch_is_the_last(data):
    no_val = TrainData(
        data.train_images,
        data.train_labels,
        data.val_images[:0],
        data.val_labels[:0],
        data.test_images,
    )
    for vectorise in ("never", "always"):
        res = train_runs(
            no_val,
            EYE[data.train_labels][None],
            np.zeros((1, 0, 10), np.float32),
            [0],
            MODEL,
            _config(epochs=2, vectorise=vectorise),
            record_dynamics=False,
        )
        assert res.best_epochs.tolist() == [2]
        np.testing.assert_array_equal(res.test_logits_best, res.test_logits)
        assert res.pool_logits.shape == (1, 0, 10)
        assert res.val_logits.shape == res.val_logits_best.shape == (1, 0, 10)
