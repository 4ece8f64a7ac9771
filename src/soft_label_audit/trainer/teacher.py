"""The teachers behind the machine labels (a model's uncertainty) of every study item.

* :func:`cross_fit_teacher` (``machine_soft``): the labelled budget of the students, the hard
  labels of one source's training items (the labels pipeline fits one per source), cross-fitted
  in k folds so no training item's label comes from a teacher that saw it;
* :func:`train_teacher` (``machine_soft_large_teacher``): trained on hard labels of extra MNIST
  training images that are not study items (so it never sees an audited image) and not in the
  held-out scoring pool (the labels pipeline chooses them); it labels the items of every source.

Its logits are later temperature-scaled (:func:`soft_label_audit.targets.temperature_for_entropy`)
so that the mean entropy of its labels equals the mean human entropy.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from soft_label_audit import params as p
from soft_label_audit.progress import progress_bar, progress_enabled
from soft_label_audit.trainer.engine import (
    TrainConfig,
    TrainData,
    predict_logits,
    resolve_device,
    torch_settings,
    train_runs,
)
from soft_label_audit.trainer.model import N_CLASSES, ModelConfig


@dataclass(frozen=True)
class TeacherConfig:
    """A teacher's block (``labels.teacher``, ``labels.large_teacher``): the model, the
    training settings (:class:`TrainConfig`), the seed, and ``k_folds`` (cross-fitted teacher)
    or ``n_train``/``n_val`` (teacher trained on extra images), whichever the block has.

    >>> from soft_label_audit.parameter_tree import base_block, teacher_block
    >>> block = teacher_block({"seed": 0, "k_folds": 1, "epochs": 1}, base_block("training"), "t")
    >>> TeacherConfig.from_params(block, "labels.teacher", needs=("k_folds",))
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: labels.teacher.k_folds must be an integer >= 2, got 1
    """

    model: ModelConfig
    train: TrainConfig
    seed: int
    k_folds: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    device: str = "auto"

    @classmethod
    def from_params(cls, params: dict, path: str, needs: tuple[str, ...] = ()) -> TeacherConfig:
        """``needs``: the optional settings this teacher must have (``k_folds``; ``n_train``
        and ``n_val``)."""

        def optional(key: str, minimum: int) -> int | None:
            value = p.required(path, params, key) if key in needs else params.get(key)
            return None if value is None else p.integer(f"{path}.{key}", value, minimum)

        return cls(
            model=ModelConfig.from_params(p.required(path, params, "model"), f"{path}.model"),
            train=TrainConfig.from_params(params, path),
            seed=p.non_negative_int(f"{path}.seed", p.required(path, params, "seed")),
            k_folds=optional("k_folds", 2),
            n_train=optional("n_train", 1),
            n_val=optional("n_val", 0),
            device=p.text(f"{path}.device", p.required(path, params, "device")),
        )


@dataclass
class Teacher:
    state_dict: dict[str, np.ndarray]
    model_config: ModelConfig
    n_train: int
    val_acc: float
    seconds: float

    def logits(self, images: np.ndarray, device: str = "auto") -> np.ndarray:
        return predict_logits(self.state_dict, self.model_config, images, device=device)


def train_teacher(
    images: np.ndarray,
    labels: np.ndarray,
    model_config: ModelConfig,
    config: TrainConfig,
    n_train: int,
    n_val: int,
    seed: int,
) -> Teacher:
    """Train on ``n_train`` images drawn (seeded) from the pool, checking accuracy on ``n_val`` others."""
    labels = np.asarray(labels, np.int64)
    if n_train + n_val > len(images):
        raise ValueError(f"teacher needs {n_train}+{n_val} images, the pool holds {len(images)}")
    order = np.random.default_rng(seed).permutation(len(images))
    tr, va = order[:n_train], order[n_train : n_train + n_val]
    eye = np.eye(N_CLASSES, dtype=np.float32)
    data = TrainData(images[tr], labels[tr], images[va], labels[va], images[:0])
    result = train_runs(
        data,
        eye[labels[tr]][None],
        eye[labels[va]][None],
        [seed],
        model_config,
        config,
        record_dynamics=False,
        desc="teacher",
    )
    return Teacher(
        state_dict=result.state_dicts[0],
        model_config=model_config,
        n_train=n_train,
        val_acc=float(result.curves["val_acc"][0, -1]) if n_val else float("nan"),
        seconds=result.seconds,
    )


@dataclass
class CrossFitTeacher:
    """Teachers of one labelled budget: k fold models trained on the study's training items.

    ``logits``: (n, 10); a training item's row comes from the fold model that did not see it,
    every other item's row is the mean of the k fold models' logits. ``fold``: (n,) the fold
    of each training item, -1 elsewhere. ``oof_acc``: accuracy of the out-of-fold argmax on the
    training items; ``heldout_acc``: accuracy of the fold-average argmax on the other items.
    ``seconds``: wall-clock time of training and predicting the k folds; ``folds_at_once``:
    how many of them trained at the same time (:func:`cross_fit_teacher`).
    """

    logits: np.ndarray
    fold: np.ndarray
    state_dicts: list[dict[str, np.ndarray]]
    model_config: ModelConfig
    oof_acc: float
    heldout_acc: float
    seconds: float
    folds_at_once: int = 1
    #: sample-updates of the k folds (folds x epochs x each fold's training items)
    sample_updates: int = 0


@dataclass(frozen=True)
class _Fold:
    """One fold's model and predictions: ``held_logits`` on its held-out training items,
    ``other_logits`` on the items that are not training items."""

    state_dict: dict[str, np.ndarray]
    held_logits: np.ndarray
    other_logits: np.ndarray
    sample_updates: int


def cross_fit_teacher(
    images: np.ndarray,
    labels: np.ndarray,
    is_train: np.ndarray,
    model_config: ModelConfig,
    config: TrainConfig,
    k_folds: int,
    seed: int,
) -> CrossFitTeacher:
    """Train ``k_folds`` teachers on the hard labels of the training items (``is_train``), each
    leaving one fold out (folds drawn at random, seeded); see :class:`CrossFitTeacher`.

    Fold ``f`` trains with seed ``seed + f`` and shares nothing with the others, so the folds
    train the way the students' runs do (:func:`train_runs`): on a CPU, ``parallel_runs`` of
    them at once (``auto``: one per ``num_threads``), each in a thread of its own with one
    intra-op thread; with ``parallel_runs: 1``, or on a GPU, one after another. Either way
    gives the same numbers (to float tolerance: only the intra-op thread count differs).
    """
    labels = np.asarray(labels, np.int64)
    is_train = np.asarray(is_train, bool)
    train_rows = np.flatnonzero(is_train)
    if k_folds < 2 or len(train_rows) < k_folds:
        raise ValueError(
            f"cross-fitting needs 2 <= k_folds <= training items, got k={k_folds}, "
            f"{len(train_rows)} items"
        )
    fold = np.full(len(labels), -1, np.int64)
    order = np.random.default_rng(seed).permutation(len(train_rows))
    fold[train_rows[order]] = np.arange(len(train_rows)) % k_folds
    other = np.flatnonzero(~is_train)
    eye = np.eye(N_CLASSES, dtype=np.float32)

    def train_fold(f: int, fold_config: TrainConfig) -> _Fold:
        fit, held = train_rows[fold[train_rows] != f], train_rows[fold[train_rows] == f]
        data = TrainData(images[fit], labels[fit], images[held], labels[held], images[other])
        result = train_runs(
            data,
            eye[labels[fit]][None],
            eye[labels[held]][None],
            [seed + f],
            model_config,
            fold_config,
            record_dynamics=False,
            desc=f"teacher fold {f + 1}/{k_folds}",
        )
        state = result.state_dicts[0]
        held_logits = predict_logits(state, model_config, images[held], device=config.device)
        return _Fold(state, held_logits, result.test_logits[0], result.sample_updates)

    device = resolve_device(config.device)
    workers = _folds_at_once(config, device, k_folds)
    start = time.perf_counter()
    if workers > 1:
        folds = _train_folds_at_once(train_fold, k_folds, workers, config, device)
    else:
        folds = [train_fold(f, config) for f in range(k_folds)]
    seconds = time.perf_counter() - start

    logits = np.zeros((len(labels), N_CLASSES))
    for f, result in enumerate(folds):  # in fold order: the same sums however they trained
        logits[train_rows[fold[train_rows] == f]] = result.held_logits
        logits[other] += result.other_logits / k_folds
    correct = logits.argmax(1) == labels
    return CrossFitTeacher(
        logits=logits,
        fold=fold,
        state_dicts=[r.state_dict for r in folds],
        model_config=model_config,
        oof_acc=float(correct[train_rows].mean()),
        heldout_acc=float(correct[other].mean()) if len(other) else float("nan"),
        seconds=seconds,
        folds_at_once=workers,
        sample_updates=sum(r.sample_updates for r in folds),
    )


def _folds_at_once(config: TrainConfig, device: torch.device, k_folds: int) -> int:
    """Folds trained at the same time: ``parallel_runs`` as :class:`TrainConfig` defines it
    for the students' runs (on a CPU; ``auto``: ``num_threads``, else every core), never more
    than the folds; one on a GPU."""
    if device.type != "cpu":
        return 1
    if config.parallel_runs == "auto":
        runs = config.num_threads or os.cpu_count() or 1
    else:
        runs = int(config.parallel_runs)
    return max(1, min(runs, k_folds))


def _train_folds_at_once(
    train_fold, k_folds: int, workers: int, config: TrainConfig, device: torch.device
) -> list[_Fold]:
    """``train_fold(f, config)`` for every fold, ``workers`` at a time in threads of one
    intra-op thread each (as the engine trains parallel runs); one bar counts the folds.

    The outer :func:`torch_settings` fixes the process-wide settings (deterministic
    algorithms) once for all folds: each fold's own call then saves and restores the same
    values, so concurrent folds never undo each other's."""
    one_thread = replace(config, num_threads=1, parallel_runs=1, progress=False)
    shown = progress_enabled(config.progress)
    bar = progress_bar(k_folds, f"teacher ({k_folds} folds, {workers} at a time)", shown)

    def run(f: int) -> _Fold:
        torch.set_num_threads(1)  # per-thread setting: each fold keeps to one core
        result = train_fold(f, one_thread)
        bar.update()
        return result

    with torch_settings(config, device):
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="teacher-fold") as pool:
            folds = list(pool.map(run, range(k_folds)))
    bar.close()
    return folds
