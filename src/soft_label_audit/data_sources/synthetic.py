"""The synthetic ambiguous variant: digits between two classes, blended in pixel space.

An ambiguous item lies between an image ``x_a`` of class ``a`` and an image ``x_b`` of class
``b`` (two MNIST training images, the *parents*, drawn among the typical images of their
class, :func:`typical_parents`). Both parents are deskewed and centred on their centroid
(:func:`.geometry.deskew`), so their strokes overlap where the two digits share a shape,
scaled to the same amount of ink, and blended with the weight ``w`` of class ``b``::

    blend = (1 - w) * deskew(x_a) + w * deskew(x_b)

Blending halves the ink where the two digits do not overlap, so an evenly mixed item would
also be a faint one. The blend is therefore brought back to the stroke contrast of its parents
(:func:`restore_contrast`): ambiguity comes from the shape, not from faint strokes. The
item's machine soft label puts mass ``1 - w`` on ``a`` and ``w`` on ``b``.

Everything is float64 numpy in a fixed order and the images are rounded to uint8 before
anything depends on them, so the bytes are the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soft_label_audit import params as p
from soft_label_audit.data_sources import geometry

#: digit pairs people confuse
DEFAULT_PAIRS = ((4, 9), (3, 5), (3, 8), (5, 8), (1, 7), (2, 7), (0, 6), (5, 6))


@dataclass(frozen=True)
class AmbiguityConfig:
    """The ``digits.synthetic`` block.

    >>> from soft_label_audit.parameter_tree import base_block
    >>> AmbiguityConfig.from_params({**base_block("digits.synthetic"), "n_items": 10}).n_items
    10
    >>> AmbiguityConfig.from_params({**base_block("digits.synthetic"), "n_items": -3})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: digits.synthetic.n_items must be a positive integer, got -3
    """

    n_items: int
    class_pairs: tuple[tuple[int, int], ...]
    min_weight: float
    max_weight: float
    parent_share: float
    first_item_id: int
    seed: int

    @classmethod
    def from_params(cls, params, path: str = "digits.synthetic") -> AmbiguityConfig:
        params = p.block(path, params)
        p.no_unknown(path, params, cls.__dataclass_fields__)
        get = lambda key: p.required(path, params, key)  # noqa: E731
        low = p.probability(f"{path}.min_weight", get("min_weight"))
        high = p.probability(f"{path}.max_weight", get("max_weight"))
        if high < low:
            raise p.fail(f"{path}.max_weight", f"a number >= min_weight ({low:g})", high)
        return cls(
            n_items=p.positive_int(f"{path}.n_items", get("n_items")),
            class_pairs=_pairs(f"{path}.class_pairs", get("class_pairs")),
            min_weight=low,
            max_weight=high,
            parent_share=p.number(
                f"{path}.parent_share", get("parent_share"), 0.0, 1.0, low_open=True
            ),
            first_item_id=p.non_negative_int(f"{path}.first_item_id", get("first_item_id")),
            seed=p.non_negative_int(f"{path}.seed", get("seed")),
        )


def _pairs(path: str, value) -> tuple[tuple[int, int], ...]:
    rule = "a list of pairs of two different digits 0..9"
    if not isinstance(value, (list, tuple)) or not value:
        raise p.fail(path, rule, value)
    pairs = []
    for pair in value:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2
        ok = ok and all(p._is_int(c) and 0 <= c <= 9 for c in pair) and pair[0] != pair[1]
        if not ok:
            raise p.fail(path, rule, value)
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def restore_contrast(
    blend: np.ndarray, target: np.ndarray, ink: float = 0.1, steps: int = 40
) -> np.ndarray:
    """``clip(s * blend, 0, 1)`` with the gain ``s`` per image in ``[1/4, 1/ink]`` that brings
    its stroke contrast (:func:`.geometry.stroke_contrast`) to ``target`` (as close as the
    bounds allow); ``s`` found by ``steps`` bisections in float64."""
    blend = np.asarray(blend, np.float64)
    low = np.full(len(blend), 0.25)
    high = np.full(len(blend), 1.0 / ink)
    for _ in range(steps):
        mid = 0.5 * (low + high)
        reached = geometry.stroke_contrast(np.minimum(mid[:, None, None] * blend, 1.0), ink)
        below = reached < target
        low = np.where(below, mid, low)
        high = np.where(below, high, mid)
    return np.minimum(low[:, None, None] * blend, 1.0)


def typical_parents(deskewed: np.ndarray, labels: np.ndarray, share: float) -> np.ndarray:
    """Mask of the images eligible as parents: per class, the ``share`` of its (deskewed)
    images closest to the class's mean image (squared pixel distance, rounded to 1e-6 so the
    last bits of a float64 sum cannot reorder them; ties by index).

    Odd parents (a very thick 1, an open 4) would move the point where a blend tips from one
    class to the other away from ``w = 0.5``; typical ones keep the ambiguity where ``w`` says.
    """
    labels = np.asarray(labels)
    keep = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        centre = deskewed[idx].mean(axis=0)
        dist = np.round(((deskewed[idx] - centre) ** 2).sum(axis=(1, 2)), 6)
        ranked = idx[np.lexsort((idx, dist))]
        keep[ranked[: max(1, int(np.ceil(share * len(idx))))]] = True
    return keep


def draw_items(labels: np.ndarray, config: AmbiguityConfig) -> dict[str, np.ndarray]:
    """For each item: a class pair drawn uniformly from ``config.class_pairs`` (order
    shuffled), the weight ``w ~ U(min_weight, max_weight)`` of class b, and one parent image
    of each class (an index into ``labels``, drawn with replacement; a label < 0 is never
    drawn). Seeded."""
    pairs = np.asarray(config.class_pairs, dtype=np.int64)
    rng = np.random.default_rng(config.seed)
    n = config.n_items
    chosen = pairs[rng.integers(0, len(pairs), size=n)]
    swap = rng.random(n) < 0.5
    class_a = np.where(swap, chosen[:, 1], chosen[:, 0])
    class_b = np.where(swap, chosen[:, 0], chosen[:, 1])
    weight = rng.uniform(config.min_weight, config.max_weight, size=n)
    by_class = {k: np.flatnonzero(np.asarray(labels) == k) for k in range(10)}
    for k in np.unique(pairs):
        if len(by_class[int(k)]) == 0:
            raise ValueError(f"no source image of class {k} to blend from")
    source_a = np.array([rng.choice(by_class[int(k)]) for k in class_a], dtype=np.int64)
    source_b = np.array([rng.choice(by_class[int(k)]) for k in class_b], dtype=np.int64)
    return {
        "class_a": class_a,
        "class_b": class_b,
        "mix_weight": weight,
        "source_a": source_a,
        "source_b": source_b,
    }


def blend_parents(
    deskewed_a: np.ndarray,
    deskewed_b: np.ndarray,
    weight: np.ndarray,
    contrast_a: np.ndarray,
    contrast_b: np.ndarray,
) -> np.ndarray:
    """uint8 items blended from deskewed parents in [0, 1] (module doc).

    Each parent is first scaled to the pair's mean ink (sum of pixels), so at ``w = 0.5`` a
    heavy 8 does not drown a light 3; the blend is then clipped to [0, 1] and brought to the
    ``w``-weighted stroke contrast ``contrast_a``, ``contrast_b`` of the (deskewed) parents
    (:func:`restore_contrast`). A higher gain would saturate the minor parent's strokes too and
    wipe out what ``w`` says about the mix."""
    xa = np.asarray(deskewed_a, np.float64)
    xb = np.asarray(deskewed_b, np.float64)
    ink_a = xa.sum(axis=(1, 2))[:, None, None] + 1e-9
    ink_b = xb.sum(axis=(1, 2))[:, None, None] + 1e-9
    mean_ink = 0.5 * (ink_a + ink_b)
    w = np.asarray(weight, np.float64)
    target = (1 - w) * np.asarray(contrast_a, np.float64) + w * np.asarray(contrast_b, np.float64)
    w = w[:, None, None]
    blend = np.minimum((1 - w) * xa * (mean_ink / ink_a) + w * xb * (mean_ink / ink_b), 1.0)
    return geometry.to_uint8(restore_contrast(blend, target))


def generate_ambiguous(
    images: np.ndarray,
    labels: np.ndarray,
    config: AmbiguityConfig,
    excluded: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Ambiguous digits between two classes from ``images`` (n, 28, 28) uint8 and ``labels``.

    ``excluded`` (optional, (n,) bool) marks images that may not be parents; the typical
    parents are still chosen among all images (:func:`typical_parents`), so excluding some
    changes which typical images are drawn, never what "typical" means. The held-out pool
    (:mod:`.pool`) uses it to keep its blends' parents apart from the study's.

    Returns images (n, 28, 28) uint8, machine_soft_label (n, 10) = ``(1 - w) e_a + w e_b``,
    class_a, class_b, mix_weight, original_label (the label's argmax, a when ``w == 0.5``) and
    source_a, source_b (indices into ``images``). One parent can feed several items (the study
    split keeps such items together, see
    :func:`soft_label_audit.data_sources.study.parent_groups`).
    """
    deskewed = geometry.deskew(np.asarray(images, np.float64) / 255.0)
    eligible = typical_parents(deskewed, labels, config.parent_share)
    if excluded is not None:
        excluded = np.asarray(excluded, bool)
        if excluded.shape != eligible.shape:
            raise ValueError(f"excluded marks {excluded.shape} images, there are {len(labels)}")
        eligible &= ~excluded
    made = draw_items(np.where(eligible, labels, -1), config)
    a, b = made["source_a"], made["source_b"]
    made["images"] = blend_parents(
        deskewed[a],
        deskewed[b],
        made["mix_weight"],
        geometry.stroke_contrast(deskewed[a]),
        geometry.stroke_contrast(deskewed[b]),
    )
    n = config.n_items
    soft = np.zeros((n, 10))
    soft[np.arange(n), made["class_a"]] += 1 - made["mix_weight"]
    soft[np.arange(n), made["class_b"]] += made["mix_weight"]
    made["machine_soft_label"] = soft
    made["original_label"] = np.where(made["mix_weight"] > 0.5, made["class_b"], made["class_a"])
    return made
