"""The teacher behind ``machine_soft`` for MNIST items: the study CNN trained on hard labels of
MNIST training images that are not study items (so it never sees an audited image).

Its logits are later temperature-scaled (:func:`soft_label_audit.targets.temperature_for_entropy`)
so that the mean entropy of its labels equals the mean human entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soft_label_audit.trainer.engine import TrainConfig, TrainData, predict_logits, train_runs
from soft_label_audit.trainer.model import N_CLASSES, ModelConfig


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
        data, eye[labels[tr]][None], eye[labels[va]][None], [seed], model_config, config,
        record_dynamics=False, desc="teacher",
    )
    return Teacher(
        state_dict=result.state_dicts[0],
        model_config=model_config,
        n_train=n_train,
        val_acc=float(result.curves["val_acc"][0, -1]) if n_val else float("nan"),
        seconds=result.seconds,
    )
