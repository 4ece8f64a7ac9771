"""The original study's released annotations: soft labels, not votes.

Schema: ``images``, ``indices`` (0-based ids in the 70k MNIST ordering of docs/architecture.md),
``original_labels`` (one-hot, 10), ``soft_label``, ``soft_label_yes_unc_equal``,
``soft_label_yes_only`` (11-slot lists stored as strings; slot 10 is "none/unsure"),
``soft_label_argmax``, ``pct_ann_unsure``, ``human_uncert_mean``, ``split``, ``source``.

Each row becomes one study item: MNIST rows keep their index as item id (their stored image
must equal the MNIST image of that id), other rows get ``non_mnist_id_offset + row``. The
file's own split is kept.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from soft_label_audit import params
from soft_label_audit.columns import H_COLS, N_MNIST, SPLITS
from soft_label_audit.crowd.validation import AnnotationValidationError, check_frame, element_check
from soft_label_audit.data_sources.tables import IMAGE_BYTES, images_to_column

SOFT_LABEL_COLUMNS = ("soft_label", "soft_label_yes_unc_equal", "soft_label_yes_only")
RELEASED_COLUMNS = (
    "images",
    "indices",
    "original_labels",
    *SOFT_LABEL_COLUMNS,
    "soft_label_argmax",
    "pct_ann_unsure",
    "human_uncert_mean",
    "split",
    "source",
)
SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "training": "train"}
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|NaN|inf")


@dataclass(frozen=True)
class ReleasedConfig:
    soft_label_column: str
    soft_label_tolerance: float
    image_tolerance: int
    non_mnist_id_offset: int
    source_map: dict[str, str]

    @classmethod
    def from_params(cls, annotation: dict[str, Any]) -> ReleasedConfig:
        """From the ``annotation`` block: ``soft_label_tolerance`` and ``released.*``.

        >>> from soft_label_audit.parameter_tree import base_block
        >>> ReleasedConfig.from_params({**base_block("annotation"), "soft_label_tolerance": 0})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: annotation.soft_label_tolerance must be a number > 0, got 0
        """
        block = params.block(
            "annotation.released", params.required("annotation", annotation, "released")
        )
        path = "annotation.released"
        params.no_unknown(
            path,
            block,
            ("soft_label_column", "image_tolerance", "non_mnist_id_offset", "source_map"),
        )
        source_map = params.block(f"{path}.source_map", params.required(path, block, "source_map"))
        return cls(
            soft_label_column=params.text(
                f"{path}.soft_label_column", params.required(path, block, "soft_label_column")
            ),
            soft_label_tolerance=params.number(
                "annotation.soft_label_tolerance",
                params.required("annotation", annotation, "soft_label_tolerance"),
                0,
                low_open=True,
            ),
            image_tolerance=params.non_negative_int(
                f"{path}.image_tolerance", params.required(path, block, "image_tolerance")
            ),
            non_mnist_id_offset=params.non_negative_int(
                f"{path}.non_mnist_id_offset",
                params.required(path, block, "non_mnist_id_offset"),
            ),
            source_map={
                str(k).lower(): params.text(f"{path}.source_map.{k}", v)
                for k, v in source_map.items()
            },
        )


def parse_vector(cell: Any, length: int) -> np.ndarray | None:
    """A list stored as a string ("[0.1, 0.9]", "[0.1 0.9]") or as a sequence; None if not ``length``."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    if isinstance(cell, str):
        values = [float(x) for x in _NUMBER.findall(cell)]
    else:
        try:
            values = [float(x) for x in np.asarray(cell, dtype=float).ravel()]
        except (TypeError, ValueError):
            return None
    if len(values) != length:
        return None
    return np.asarray(values, dtype=float)


def decode_image(cell: Any) -> np.ndarray | None:
    """A 28x28 uint8 image from raw 784 bytes, PNG bytes, ``{"bytes": ...}`` or 784 numbers.

    Numbers in [0, 1] (all of them) are read as ``round(255 x)``.
    """
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    if isinstance(cell, bytes | bytearray):
        if len(cell) == IMAGE_BYTES:
            return np.frombuffer(bytes(cell), np.uint8).reshape(28, 28)
        if bytes(cell[:8]) == b"\x89PNG\r\n\x1a\n":
            import matplotlib.image as mpimg

            img = mpimg.imread(io.BytesIO(bytes(cell)), format="png")
            if img.ndim == 3:
                img = img[..., :3].mean(axis=2)
            if img.shape != (28, 28):
                return None
            return np.rint(np.asarray(img, float) * 255).astype(np.uint8)
        return None
    vec = parse_vector(cell, IMAGE_BYTES)
    if vec is None or not np.isfinite(vec).all():
        return None
    if vec.max() <= 1.0 and vec.min() >= 0.0:
        vec = vec * 255.0
    if vec.min() < 0 or vec.max() > 255:
        return None
    return np.rint(vec).astype(np.uint8).reshape(28, 28)


def _distribution(tolerance: float, length: int):
    def ok(cell: Any) -> bool:
        v = parse_vector(cell, length)
        return (
            v is not None
            and bool(np.isfinite(v).all())
            and bool((v >= 0).all())
            and abs(v.sum() - 1.0) <= tolerance
        )

    return ok


def _is_fraction_or_percent(v: Any) -> bool:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and 0.0 <= x <= 100.0


def released_schema(config: ReleasedConfig) -> pa.DataFrameSchema:
    known_sources = set(config.source_map)
    dist11 = _distribution(config.soft_label_tolerance, len(H_COLS))
    dist10 = _distribution(config.soft_label_tolerance, 10)
    soft_rule = (
        f"soft label is 11 non-negative numbers summing to 1 (±{config.soft_label_tolerance:g})"
    )
    columns: dict[str, pa.Column] = {
        "images": pa.Column(
            None,
            nullable=False,
            checks=[element_check("image is 28x28 pixels", lambda v: decode_image(v) is not None)],
        ),
        "indices": pa.Column(
            None,
            nullable=False,
            checks=[element_check("indices is an integer >= 0", lambda v: _nonneg_int(v))],
        ),
        "original_labels": pa.Column(
            None,
            nullable=False,
            checks=[element_check("original_labels is 10 numbers summing to 1", dist10)],
        ),
        "pct_ann_unsure": pa.Column(
            None,
            nullable=False,
            checks=[
                element_check(
                    "pct_ann_unsure is a share in [0, 1] or a percentage", _is_fraction_or_percent
                )
            ],
        ),
        "human_uncert_mean": pa.Column(None, nullable=True),
        "soft_label_argmax": pa.Column(None, nullable=True),
        "split": pa.Column(
            None,
            nullable=False,
            checks=[
                element_check(f"split is one of {list(SPLITS)}", lambda v: _split(v) in SPLITS)
            ],
        ),
        "source": pa.Column(
            None,
            nullable=False,
            checks=[
                element_check(
                    f"source is one of {sorted(known_sources)} (annotation.released.source_map)",
                    lambda v: str(v).strip().lower() in known_sources,
                )
            ],
        ),
    }
    for col in SOFT_LABEL_COLUMNS:
        columns[col] = pa.Column(
            None, nullable=False, checks=[element_check(f"{col}: {soft_rule}", dist11)]
        )

    def mnist_ids(df: pd.DataFrame) -> pd.Series:
        is_mnist = df["source"].map(
            lambda v: config.source_map.get(str(v).strip().lower()) == "mnist"
        )
        idx = df["indices"].map(lambda v: int(float(v)) if _nonneg_int(v) else -1)
        in_range = ~is_mnist | ((idx >= 0) & (idx < N_MNIST))
        dup = is_mnist & idx.duplicated(keep=False) & (idx >= 0)
        return in_range & ~dup

    return pa.DataFrameSchema(
        columns,
        checks=[pa.Check(mnist_ids, name=f"MNIST rows have distinct indices in 0..{N_MNIST - 1}")],
        strict=False,
        coerce=False,
    )


def _nonneg_int(v: Any) -> bool:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and x.is_integer() and x >= 0 and not isinstance(v, bool)


def _split(v: Any) -> str:
    s = str(v).strip().lower()
    return SPLIT_ALIASES.get(s, s)


def validate_released(frame: pd.DataFrame, file: str, config: ReleasedConfig) -> None:
    """Raise :class:`AnnotationValidationError` unless the frame follows the released schema."""
    if config.soft_label_column not in SOFT_LABEL_COLUMNS:
        raise AnnotationValidationError(
            f"annotation.released.soft_label_column must be one of {SOFT_LABEL_COLUMNS}, "
            f"not {config.soft_label_column!r}"
        )
    missing = [c for c in RELEASED_COLUMNS if c not in frame.columns]
    if missing:
        raise AnnotationValidationError(
            f"Invalid released annotations in {file}:\n  rule 'required column present': "
            f"missing column(s) {missing}; the released schema has {list(RELEASED_COLUMNS)}"
        )
    if frame.empty:
        raise AnnotationValidationError(
            f"Invalid released annotations in {file}:\n  rule 'at least one row': the file has no rows"
        )
    check_frame(frame.reset_index(drop=True), released_schema(config), file, "released annotations")


def released_to_study(
    frame: pd.DataFrame, digits: pd.DataFrame, file: str, config: ReleasedConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(study items with images, soft labels of every variant, long) from a valid released frame.

    Study items: item_id, source, split, original_label, image, machine_soft_label (None).
    Soft labels: item_id, aggregation (``released:<column>``), h_0..h_none, pct_unsure.
    MNIST rows must match the ``digits`` image of their index (max abs pixel difference at
    most ``image_tolerance``).
    """
    frame = frame.reset_index(drop=True)
    source = frame["source"].map(lambda v: config.source_map[str(v).strip().lower()]).astype(str)
    index = frame["indices"].map(lambda v: int(float(v))).astype("int64")
    is_mnist = (source == "mnist").to_numpy()
    item_id = np.where(
        is_mnist, index.to_numpy(), config.non_mnist_id_offset + np.arange(len(frame))
    )
    images = np.stack([decode_image(v) for v in frame["images"]])

    # MNIST rows: their id must be in digits and the stored image must be that item's image
    lookup = digits.set_index("item_id")
    mnist_ids = item_id[is_mnist]
    absent = [int(i) for i in mnist_ids if i not in lookup.index]
    if absent:
        raise AnnotationValidationError(
            f"Invalid released annotations in {file}:\n  rule 'MNIST rows refer to digits items': "
            f"{len(absent)} row(s) name ids missing from `digits`; first {absent[:5]}"
        )
    if is_mnist.any():
        from soft_label_audit.data_sources.tables import images_from_column

        expected = images_from_column(lookup.loc[mnist_ids, "image"])
        diff = (
            np.abs(images[is_mnist].astype(int) - expected.astype(int))
            .reshape(len(mnist_ids), -1)
            .max(axis=1)
        )
        bad = np.flatnonzero(is_mnist)[diff > config.image_tolerance]
        if len(bad):
            shown = pd.DataFrame(
                {
                    "row": bad[:5],
                    "indices": index.to_numpy()[bad[:5]],
                    "max_pixel_difference": diff[diff > config.image_tolerance][:5],
                }
            )
            raise AnnotationValidationError(
                f"Invalid released annotations in {file}:\n  rule 'stored image equals the MNIST image "
                f"of its index (max pixel difference <= {config.image_tolerance})': {len(bad)} "
                f"offending row(s); first {min(5, len(bad))}:\n"
                + "\n".join("    " + t for t in shown.to_string(index=False).splitlines())
            )
    labels = np.stack([parse_vector(v, 10) for v in frame["original_labels"]]).argmax(axis=1)
    study = pd.DataFrame(
        {
            "item_id": item_id.astype("int64"),
            "source": source.to_numpy(),
            "split": frame["split"].map(_split).astype(str).to_numpy(),
            "original_label": labels.astype("int64"),
            "image": images_to_column(images),
            "machine_soft_label": [None] * len(frame),
        }
    )
    if study["item_id"].duplicated().any():
        dup = study.loc[study["item_id"].duplicated(keep=False), "item_id"].head(5).tolist()
        raise AnnotationValidationError(
            f"Invalid released annotations in {file}:\n  rule 'one row per item': duplicate item ids {dup}"
        )
    pct = pd.to_numeric(frame["pct_ann_unsure"], errors="coerce").astype(float)
    if pct.max() > 1.0:
        pct = pct / 100.0  # the column holds percentages
    soft_tables = []
    for col in SOFT_LABEL_COLUMNS:
        h = np.stack([parse_vector(v, len(H_COLS)) for v in frame[col]])
        h = h / h.sum(axis=1, keepdims=True)
        table = pd.DataFrame(h, columns=list(H_COLS))
        table.insert(0, "item_id", study["item_id"].to_numpy())
        table["aggregation"] = f"released:{col}"
        table["pct_unsure"] = pct.to_numpy()
        soft_tables.append(table)
    return study, pd.concat(soft_tables, ignore_index=True)
