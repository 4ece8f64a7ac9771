"""The simulated annotators' eyes: a nearest-neighbour observer over PCA features.

It shares no data and no architecture with the audited CNNs: its memory is MNIST *test*
images only (ids 60000..69999, never study items), it has no learned weights beyond a
principal-component basis, and it judges a digit by its resemblance to remembered digits.

Pipeline of one look at an image ``x`` (pixels in [0, 1]):

1. the observer's viewing conditions warp ``x`` (see :func:`warp`) and blur it;
2. the image is deskewed (slant removed from its second moments, as readers ignore slant);
3. it is projected on the first ``n_components`` principal axes of the deskewed memory;
4. the ``k`` nearest remembered digits (squared Euclidean distance ``d_j^2``) vote with
   weights ``w_j = exp(-(d_j^2 - d_min^2) / (2 b^2))``, ``b`` the bandwidth, giving the
   class evidence ``p_c = sum_j w_j [y_j = c] / sum_j w_j``;
5. the atypicality ``a = d_min / d_typ`` compares the distance to the nearest memory with the
   ``typical_quantile`` of nearest-neighbour distances inside the memory (``a > 1``: the
   image looks like no digit the observer has seen).

The observer also knows the median stroke contrast of its memory (``reference_contrast_``);
the crowd uses it to make decisions less sharp on faint or smudged images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_CENTRE = np.array([13.5, 13.5])


def moments_deskew(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps (A, offset) that centre each image and remove its slant.

    For intensity-weighted centroid ``(r0, c0)``, variance ``var_r`` and covariance
    ``cov_rc``, the shear ``alpha = cov_rc / var_r`` is undone by sampling the input at
    ``A @ p + offset`` with ``A = [[1, 0], [alpha, 1]]`` and ``offset = (r0, c0) - A @ centre``.
    """
    x = np.asarray(images, dtype=np.float64)
    n = len(x)
    rows, cols = np.mgrid[0:28, 0:28].astype(np.float64)
    mass = x.sum(axis=(1, 2)) + 1e-9
    r0 = (x * rows).sum(axis=(1, 2)) / mass
    c0 = (x * cols).sum(axis=(1, 2)) / mass
    dr = rows[None] - r0[:, None, None]
    dc = cols[None] - c0[:, None, None]
    var_r = (x * dr**2).sum(axis=(1, 2)) / mass + 1e-9
    cov = (x * dr * dc).sum(axis=(1, 2)) / mass
    alpha = np.clip(cov / var_r, -1.0, 1.0)
    a = np.zeros((n, 2, 2))
    a[:, 0, 0] = 1.0
    a[:, 1, 1] = 1.0
    a[:, 1, 0] = alpha
    offset = np.stack([r0, c0], axis=1) - a @ _CENTRE
    return a, offset


def warp(images: np.ndarray, a: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Bilinear resampling ``out_i(p) = x_i(A_i p + offset_i)``, zero outside the frame."""
    x = np.asarray(images, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.copy()
    grid = np.mgrid[0:28, 0:28].reshape(2, -1).astype(np.float64)
    src = np.einsum("nij,jp->nip", a, grid) + offset[:, :, None]
    coords = np.empty((3, n, 784), dtype=np.float64)
    coords[0] = np.arange(n)[:, None]
    coords[1:] = src.transpose(1, 0, 2)
    return ndimage.map_coordinates(
        x, coords.reshape(3, n, 28, 28), order=1, mode="constant", cval=0.0
    )


def compose(
    a1: np.ndarray, o1: np.ndarray, a2: np.ndarray, o2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The map ``p -> A1 (A2 p + o2) + o1``: first apply the sampling map 2, then map 1."""
    return a1 @ a2, np.einsum("nij,nj->ni", a1, o2) + o1


def stroke_contrast(images01: np.ndarray, ink: float = 0.1) -> np.ndarray:
    """Mean intensity of the inked pixels (``x > ink``): crisp strokes near 1, smudged ones lower."""
    x = np.asarray(images01, dtype=np.float64)
    mask = x > ink
    return (x * mask).sum(axis=(1, 2)) / np.maximum(mask.sum(axis=(1, 2)), 1)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return np.asarray(images, dtype=np.float64)
    return ndimage.gaussian_filter(np.asarray(images, dtype=np.float64), sigma=(0, sigma, sigma))


@dataclass
class NearestNeighbourObserver:
    """Perception model of the simulated crowd (fitted state ends in an underscore)."""

    n_components: int = 40
    k_neighbours: int = 10
    bandwidth_scale: float = 0.35
    typical_quantile: float = 0.99
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

    def perceive(self, images01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class evidence (n, 10) and atypicality (n,) of already-viewed images in [0, 1]."""
        feats = self.features(images01)
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
) -> list[NearestNeighbourObserver]:
    """``n_profiles`` observers that see differently: each remembers its own random share
    ``memory_share`` of ``images`` and draws its number of principal components and of
    neighbours uniformly (integers) in the given ranges. Seeded."""
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
        )
        observers.append(observer.fit(np.asarray(images)[pick], np.asarray(labels)[pick]))
    return observers
