"""The simulated annotators' eyes: a nearest-neighbour observer over PCA features.

It shares no data and no architecture with the audited CNNs: its memory is MNIST *test*
images only (``columns.MNIST_TEST_IDS``, never study items), it has no learned weights beyond a
principal-component basis, and it judges a digit by its resemblance to remembered digits.

Pipeline of one look at an image ``x`` (pixels in [0, 1]):

1. the observer's viewing conditions warp ``x`` (see :func:`warp`) and blur it;
2. the image is deskewed (slant removed from its second moments, as readers ignore slant);
3. it is projected on the first ``n_components`` principal axes of the deskewed memory;
4. class evidence, with ``b`` the bandwidth (``bandwidth_scale`` x the memory's median
   nearest-neighbour distance):

   * ``class_neighbours = j > 0`` (the crowd's default): ``p_c ∝ exp(-(D_c - min D) / b)``,
     ``D_c`` the mean distance to the ``j`` nearest remembered digits of class ``c``. Every
     class keeps some evidence, and the margin between the two most likely digits shrinks
     smoothly as an image moves between them;
   * ``class_neighbours = 0``: the ``k`` nearest remembered digits (squared distance
     ``d_j^2``) vote with weights ``w_j = exp(-(d_j^2 - d_min^2) / (2 b^2))``, giving
     ``p_c = sum_j w_j [y_j = c] / sum_j w_j``;
5. the atypicality ``a = d_min / d_typ`` compares the distance to the nearest memory with the
   ``typical_quantile`` of nearest-neighbour distances inside the memory (``a > 1``: the
   image looks like no digit the observer has seen).

The observer also knows the median stroke contrast of its memory (``reference_contrast_``);
the crowd uses it to make decisions less sharp on faint or smudged images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from soft_label_audit import params as p
from soft_label_audit.data_sources.geometry import (  # noqa: F401  (the observer's image ops)
    blur,
    compose,
    moments_deskew,
    stroke_contrast,
    warp,
)


@dataclass(frozen=True)
class PerceptionConfig:
    """The ``simulated_crowd.perception`` block (see :func:`observer_profiles`).

    >>> from soft_label_audit.parameter_tree import base_block
    >>> block = base_block("simulated_crowd.perception")
    >>> PerceptionConfig.from_params({**block, "n_components": [30, 50]}).n_components
    (30, 50)
    >>> PerceptionConfig.from_params({**block, "memory_share": 0})
    Traceback (most recent call last):
    ...
    soft_label_audit.params.ParameterError: simulated_crowd.perception.memory_share must be a number in (0, 1], got 0
    """

    memory_size: int
    n_profiles: int
    memory_share: float
    n_components: tuple[int, int]
    k_neighbours: tuple[int, int]
    bandwidth_scale: float
    typical_quantile: float
    class_neighbours: int

    @classmethod
    def from_params(cls, params: Any, path: str = "simulated_crowd.perception") -> PerceptionConfig:
        params = p.block(path, params)
        p.no_unknown(path, params, cls.__dataclass_fields__)
        get = lambda key: p.required(path, params, key)  # noqa: E731
        return cls(
            memory_size=p.positive_int(f"{path}.memory_size", get("memory_size")),
            n_profiles=p.positive_int(f"{path}.n_profiles", get("n_profiles")),
            memory_share=p.number(f"{path}.memory_share", get("memory_share"), 0, 1, low_open=True),
            n_components=int_range(f"{path}.n_components", get("n_components")),
            k_neighbours=int_range(f"{path}.k_neighbours", get("k_neighbours")),
            bandwidth_scale=p.number(
                f"{path}.bandwidth_scale", get("bandwidth_scale"), 0, low_open=True
            ),
            typical_quantile=p.number(
                f"{path}.typical_quantile", get("typical_quantile"), 0, 1, low_open=True
            ),
            class_neighbours=p.non_negative_int(
                f"{path}.class_neighbours", get("class_neighbours")
            ),
        )


def int_range(path: str, value: Any) -> tuple[int, int]:
    """``[lo, hi]`` of positive integers (one integer: ``lo = hi``)."""
    if not isinstance(value, (list, tuple)):
        value = [value, value]
    if len(value) != 2:
        raise p.fail(path, "a positive integer or a pair [low, high] of them", value)
    lo = p.positive_int(f"{path}[0]", value[0])
    hi = p.positive_int(f"{path}[1]", value[1])
    if hi < lo:
        raise p.fail(path, "an increasing pair [low, high]", list(value))
    return lo, hi


@dataclass
class NearestNeighbourObserver:
    """Perception model of the simulated crowd (fitted state ends in an underscore)."""

    n_components: int = 40
    k_neighbours: int = 10
    bandwidth_scale: float = 0.35
    typical_quantile: float = 0.99
    class_neighbours: int = 0
    chunk: int = 2048

    def fit(self, images: np.ndarray, labels: np.ndarray) -> NearestNeighbourObserver:
        """Remember ``images`` (n, 28, 28) uint8 with their ``labels`` (MNIST test images)."""
        x = np.asarray(images, dtype=np.float64) / 255.0
        self.reference_contrast_ = float(np.median(stroke_contrast(x)))
        a, off = moments_deskew(x)
        flat = warp(x, a, off).reshape(len(x), -1).astype(np.float64)
        self.mean_ = flat.mean(axis=0)
        centred = flat - self.mean_
        eigval, eigvec = np.linalg.eigh(centred.T @ centred)
        self.components_ = eigvec[:, ::-1][:, : self.n_components].copy()
        # eigenvector signs may differ between LAPACK builds; distances do not
        self.memory_ = centred @ self.components_
        self.memory_labels_ = np.asarray(labels, dtype=np.int64)
        # nearest-neighbour distances inside the memory (leave one out)
        d2, _ = self._neighbours(self.memory_, k=2)
        nn = np.sqrt(np.maximum(d2[:, 1], 0.0))
        self.bandwidth_ = float(self.bandwidth_scale * np.median(nn))
        self.typical_distance_ = float(np.quantile(nn, self.typical_quantile))
        return self

    def _neighbours(self, feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Squared distances and indices of the ``k`` nearest memories, sorted by distance."""
        mem = self.memory_
        mem_sq = (mem**2).sum(axis=1)
        out_d = np.empty((len(feats), k))
        out_i = np.empty((len(feats), k), dtype=np.int64)
        for start in range(0, len(feats), self.chunk):
            f = np.asarray(feats[start : start + self.chunk], np.float64)
            d2 = (f**2).sum(axis=1)[:, None] + mem_sq[None] - 2.0 * (f @ mem.T)
            idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
            dk = np.take_along_axis(d2, idx, axis=1)
            order = np.lexsort((idx, dk), axis=1)  # ties by memory index, never by chance
            out_d[start : start + len(f)] = np.take_along_axis(dk, order, axis=1)
            out_i[start : start + len(f)] = np.take_along_axis(idx, order, axis=1)
        return np.maximum(out_d, 0.0), out_i

    def features(self, images01: np.ndarray) -> np.ndarray:
        """PCA features of images with pixels in [0, 1] (deskewed first)."""
        a, off = moments_deskew(images01)
        flat = warp(images01, a, off).reshape(len(images01), -1)
        return (flat - self.mean_) @ self.components_

    def _class_distances(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per class, the mean distance to its ``class_neighbours`` nearest memories (n, 10),
        and the squared distance to the nearest memory of any class (n,)."""
        mem = self.memory_
        mem_sq = (mem**2).sum(axis=1)
        j = self.class_neighbours
        members = [np.flatnonzero(self.memory_labels_ == c) for c in range(10)]
        out = np.full((len(feats), 10), np.inf)
        nearest = np.empty(len(feats))
        for start in range(0, len(feats), self.chunk):
            f = np.asarray(feats[start : start + self.chunk], np.float64)
            d2 = np.maximum((f**2).sum(axis=1)[:, None] + mem_sq[None] - 2.0 * (f @ mem.T), 0.0)
            nearest[start : start + len(f)] = d2.min(axis=1)
            for c, cols in enumerate(members):
                if len(cols) == 0:
                    continue
                m = min(j, len(cols))
                part = np.sort(np.partition(d2[:, cols], m - 1, axis=1)[:, :m], axis=1)
                out[start : start + len(f), c] = np.sqrt(part).mean(axis=1)
        return out, nearest

    def perceive(self, images01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class evidence (n, 10) and atypicality (n,) of already-viewed images in [0, 1].

        With ``class_neighbours = j > 0`` the evidence compares whole classes instead of
        counting neighbours: ``p_c ∝ exp(-(D_c - min D) / b)`` with ``D_c`` the mean distance to
        the ``j`` nearest remembered digits of class ``c``, so every class keeps some evidence
        and the margin between the two most likely classes shrinks smoothly as an image moves
        between them."""
        feats = self.features(images01)
        if self.class_neighbours > 0:
            dist, nearest = self._class_distances(feats)
            evidence = np.exp(-(dist - dist.min(axis=1, keepdims=True)) / self.bandwidth_)
            evidence /= evidence.sum(axis=1, keepdims=True)
            return evidence, np.sqrt(nearest) / self.typical_distance_
        d2, idx = self._neighbours(feats, self.k_neighbours)
        weights = np.exp(-(d2 - d2[:, :1]) / (2.0 * self.bandwidth_**2))
        labels = self.memory_labels_[idx]
        evidence = np.zeros((len(feats), 10))
        np.add.at(
            evidence,
            (np.repeat(np.arange(len(feats)), idx.shape[1]), labels.ravel()),
            weights.ravel(),
        )
        evidence /= evidence.sum(axis=1, keepdims=True)
        atypicality = np.sqrt(d2[:, 0]) / self.typical_distance_
        return evidence, atypicality


def observer_profiles(
    images: np.ndarray,
    labels: np.ndarray,
    n_profiles: int,
    memory_share: float,
    n_components: tuple[int, int],
    k_neighbours: tuple[int, int],
    bandwidth_scale: float,
    typical_quantile: float,
    seed: int,
    class_neighbours: int = 5,
) -> list[NearestNeighbourObserver]:
    """``n_profiles`` observers that see differently: each remembers its own random share
    ``memory_share`` of ``images`` and draws its number of principal components and of
    neighbours uniformly (integers) in the given ranges; all use ``class_neighbours``
    (:meth:`NearestNeighbourObserver.perceive`). Seeded."""
    if not 0 < memory_share <= 1:
        raise ValueError(
            f"simulated_crowd.perception.memory_share must be in (0, 1], got {memory_share}"
        )
    rng = np.random.default_rng(seed)
    n = len(images)
    size = max(2, int(round(memory_share * n)))
    observers = []
    for _ in range(max(1, int(n_profiles))):
        pick = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
        observer = NearestNeighbourObserver(
            n_components=int(rng.integers(n_components[0], n_components[1] + 1)),
            k_neighbours=int(rng.integers(k_neighbours[0], k_neighbours[1] + 1)),
            bandwidth_scale=bandwidth_scale,
            typical_quantile=typical_quantile,
            class_neighbours=class_neighbours,
        )
        observers.append(observer.fit(np.asarray(images)[pick], np.asarray(labels)[pick]))
    return observers


def observers_from_config(
    images: np.ndarray, labels: np.ndarray, config: PerceptionConfig, seed: int
) -> list[NearestNeighbourObserver]:
    """:func:`observer_profiles` with the settings of a ``simulated_crowd.perception`` block
    (``memory_size`` is applied by the caller when it picks ``images``)."""
    return observer_profiles(
        images,
        labels,
        n_profiles=config.n_profiles,
        memory_share=config.memory_share,
        n_components=config.n_components,
        k_neighbours=config.k_neighbours,
        bandwidth_scale=config.bandwidth_scale,
        typical_quantile=config.typical_quantile,
        seed=seed,
        class_neighbours=config.class_neighbours,
    )
