"""Image geometry in float64 numpy: moments, deskewing, resampling, blur, stroke contrast.

Shared by the synthetic generator (which deskews and centres its parent digits) and the
simulated crowd's perception model (which deskews what it sees). Every function is plain
float64 numpy or scipy.ndimage in a fixed order, so its output does not depend on the machine
beyond the last bits of a float64.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIDE = 28
CENTRE = np.array([13.5, 13.5])


def moments_deskew(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps (A, offset) that centre each image and remove its slant.

    For intensity-weighted centroid ``(r0, c0)``, variance ``var_r`` and covariance
    ``cov_rc``, the shear ``alpha = cov_rc / var_r`` is undone by sampling the input at
    ``A @ p + offset`` with ``A = [[1, 0], [alpha, 1]]`` and ``offset = (r0, c0) - A @ centre``.
    """
    x = np.asarray(images, dtype=np.float64)
    n = len(x)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
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
    offset = np.stack([r0, c0], axis=1) - a @ CENTRE
    return a, offset


def warp(images: np.ndarray, a: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Bilinear resampling ``out_i(p) = x_i(A_i p + offset_i)``, zero outside the frame."""
    x = np.asarray(images, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.copy()
    grid = np.mgrid[0:SIDE, 0:SIDE].reshape(2, -1).astype(np.float64)
    src = np.einsum("nij,jp->nip", a, grid) + offset[:, :, None]
    coords = np.empty((3, n, SIDE * SIDE), dtype=np.float64)
    coords[0] = np.arange(n)[:, None]
    coords[1:] = src.transpose(1, 0, 2)
    return ndimage.map_coordinates(
        x, coords.reshape(3, n, SIDE, SIDE), order=1, mode="constant", cval=0.0
    )


def deskew(images01: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Images centred on their centroid with their slant removed (:func:`moments_deskew`),
    ``chunk`` images at a time (each image is resampled on its own: chunking changes nothing)."""
    x = np.asarray(images01, dtype=np.float64)
    out = np.empty_like(x)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        a, offset = moments_deskew(part)
        out[start : start + chunk] = warp(part, a, offset)
    return out


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
    """Gaussian blur of each image (``sigma`` px; 0 leaves the images as they are)."""
    if sigma <= 0:
        return np.asarray(images, dtype=np.float64)
    return ndimage.gaussian_filter(np.asarray(images, dtype=np.float64), sigma=(0, sigma, sigma))


def to_uint8(images01: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] rounded (half to even) to uint8 0..255."""
    return np.clip(np.rint(np.asarray(images01, np.float64) * 255.0), 0, 255).astype(np.uint8)
