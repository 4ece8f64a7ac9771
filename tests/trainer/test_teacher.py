"""The cross-fitted teacher's folds trained at once (threads of one intra-op thread each) give
the numbers of the folds trained one after another."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from soft_label_audit.parameter_tree import base_block
from soft_label_audit.trainer import ModelConfig, TrainConfig, cross_fit_teacher
from soft_label_audit.trainer import teacher as teacher_module
from soft_label_audit.trainer.engine import train_runs

MODEL = ModelConfig(channels=(4, 8), hidden=16)


def _config(**kw) -> TrainConfig:
    base = TrainConfig.from_params({**base_block("training"), "epochs": 2})
    fixed = dict(batch_size=32, lr=3e-3, vectorise="never", device="cpu", progress=False)
    return replace(base, **(fixed | kw))


@pytest.fixture(scope="module")
def items(mnist_arrays):
    x = mnist_arrays["train_images"][:150]
    y = mnist_arrays["train_labels"][:150].astype(np.int64)
    return x, y, np.arange(150) < 100


def _spied_teacher(monkeypatch, items, config, k_folds=3):
    """The teacher, and per fold the thread that trained it and the settings it trained with."""
    calls = []

    def spy(data, *args, **kwargs):
        calls.append((threading.current_thread().name, args[-1]))
        return train_runs(data, *args, **kwargs)

    monkeypatch.setattr(teacher_module, "train_runs", spy)
    x, y, is_train = items
    return cross_fit_teacher(x, y, is_train, MODEL, config, k_folds=k_folds, seed=3), calls


def test_folds_trained_at_once_match_folds_trained_one_after_another(items, monkeypatch):
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    in_turn, turn_calls = _spied_teacher(
        monkeypatch, items, _config(num_threads=2, parallel_runs=1)
    )
    at_once, once_calls = _spied_teacher(
        monkeypatch, items, _config(num_threads=2, parallel_runs="auto")
    )
    # one after another: in the calling thread, with the configured intra-op threads
    assert in_turn.folds_at_once == 1
    assert {name for name, _ in turn_calls} == {threading.current_thread().name}
    assert [c.num_threads for _, c in turn_calls] == [2, 2, 2]
    # at once: num_threads (auto) folds at a time, in pool threads of one intra-op thread each
    assert at_once.folds_at_once == 2
    assert len({name for name, _ in once_calls}) == 2
    assert all(name.startswith("teacher-fold") for name, _ in once_calls)
    assert [(c.num_threads, c.parallel_runs) for _, c in once_calls] == [(1, 1)] * 3
    # the process's torch settings are as they were
    assert torch.get_num_threads() == threads_before
    assert torch.are_deterministic_algorithms_enabled() == deterministic_before

    np.testing.assert_array_equal(at_once.fold, in_turn.fold)
    np.testing.assert_allclose(at_once.logits, in_turn.logits, atol=1e-4)
    for a, b in zip(at_once.state_dicts, in_turn.state_dicts, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_allclose(a[name], b[name], atol=1e-5, err_msg=name)
    assert at_once.oof_acc == pytest.approx(in_turn.oof_acc)
    assert at_once.heldout_acc == pytest.approx(in_turn.heldout_acc)
    # every training item is in the fit set of k - 1 = 2 folds, for 2 epochs
    assert at_once.sample_updates == in_turn.sample_updates == 2 * 2 * 100
    # the folds differ from each other (the comparison above is not of identical models)
    assert not np.allclose(
        in_turn.state_dicts[0]["conv1.weight"], in_turn.state_dicts[1]["conv1.weight"]
    )


def test_folds_at_once_never_exceed_the_folds(items, monkeypatch):
    teacher, calls = _spied_teacher(
        monkeypatch, items, _config(num_threads=1, parallel_runs=4), k_folds=2
    )
    assert teacher.folds_at_once == 2 and len(calls) == 2
