"""The trainer: the study CNN, soft-target training with dynamics, the vectorised multi-run path
and the teacher. Imports torch and numpy only (tqdm optionally), so it is usable outside Kedro.
"""

from soft_label_audit.trainer.engine import (
    CURVE_NAMES,
    TrainConfig,
    TrainData,
    TrainResult,
    batch_orders,
    predict_logits,
    resolve_device,
    soft_cross_entropy,
    train_runs,
)
from soft_label_audit.trainer.model import ModelConfig, SmallCNN, build_model
from soft_label_audit.trainer.teacher import (
    CrossFitTeacher,
    Teacher,
    TeacherConfig,
    cross_fit_teacher,
    train_teacher,
)

__all__ = [
    "CURVE_NAMES",
    "CrossFitTeacher",
    "ModelConfig",
    "SmallCNN",
    "Teacher",
    "TeacherConfig",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "batch_orders",
    "build_model",
    "cross_fit_teacher",
    "predict_logits",
    "resolve_device",
    "soft_cross_entropy",
    "train_runs",
    "train_teacher",
]
