"""The teachers behind the machine labels of MNIST items.

* :func:`cross_fit_teacher` (``machine_soft``): the labelled budget of the students, the hard
  labels of the study's training items, cross-fitted in k folds so no training item's label
  comes from a teacher that saw it;
* :func:`train_teacher` (``machine_soft_large_teacher``): trained on hard labels of extra MNIST
  training images that are not study items (so it never sees an audited image) and not in the
  held-out scoring pool (the labels pipeline chooses them).

Its logits are later temperature-scaled (:func:`soft_label_audit.targets.temperature_for_entropy`)
so that the mean entropy of its labels equals the mean human entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soft_label_audit import params as p
from soft_label_audit.trainer.engine import TrainConfig, TrainData, predict_logits, train_runs
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
    """

    logits: np.ndarray
    fold: np.ndarray
    state_dicts: list[dict[str, np.ndarray]]
    model_config: ModelConfig
    oof_acc: float
    heldout_acc: float
    seconds: float


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
    leaving one fold out (folds drawn at random, seeded); see :class:`CrossFitTeacher`."""
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
    logits = np.zeros((len(labels), N_CLASSES))
    states, seconds = [], 0.0
    for f in range(k_folds):
        fit, held = train_rows[fold[train_rows] != f], train_rows[fold[train_rows] == f]
        data = TrainData(images[fit], labels[fit], images[held], labels[held], images[other])
        result = train_runs(
            data,
            eye[labels[fit]][None],
            eye[labels[held]][None],
            [seed + f],
            model_config,
            config,
            record_dynamics=False,
            desc=f"teacher fold {f + 1}/{k_folds}",
        )
        state = result.state_dicts[0]
        logits[held] = predict_logits(state, model_config, images[held], device=config.device)
        logits[other] += result.test_logits[0] / k_folds
        states.append(state)
        seconds += result.seconds
    correct = logits.argmax(1) == labels
    return CrossFitTeacher(
        logits=logits,
        fold=fold,
        state_dicts=states,
        model_config=model_config,
        oof_acc=float(correct[train_rows].mean()),
        heldout_acc=float(correct[other].mean()) if len(other) else float("nan"),
        seconds=seconds,
    )
