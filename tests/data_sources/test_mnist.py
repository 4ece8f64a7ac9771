import hashlib
import shutil

import numpy as np
import pytest

from soft_label_audit.data_sources import mnist


def test_rebuilt_files_match_published_md5(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    created = mnist.ensure_idx_files(raw, "package")
    assert sorted(created) == sorted(mnist.IDX_MD5)
    for name, expected in mnist.IDX_MD5.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == expected


def test_loaded_arrays_follow_the_standard_layout(mnist_arrays):
    assert mnist_arrays["train_images"].shape == (60_000, 28, 28)
    assert mnist_arrays["test_images"].shape == (10_000, 28, 28)
    assert mnist_arrays["train_images"].dtype == np.uint8
    # the first training label of MNIST is a 5, the first test label a 7
    assert mnist_arrays["train_labels"][0] == 5 and mnist_arrays["test_labels"][0] == 7
    assert np.bincount(mnist_arrays["train_labels"]).tolist()[1] == 6742


def _copy(mnist_raw_dir, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(mnist_raw_dir, raw)
    return raw


def test_corrupted_file_stops_with_expected_and_actual_sums(mnist_raw_dir, tmp_path):
    raw = _copy(mnist_raw_dir, tmp_path)
    target = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    actual = hashlib.md5(bytes(data)).hexdigest()
    with pytest.raises(mnist.MnistChecksumError) as err:
        mnist.ensure_idx_files(raw, "package")
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message
    assert mnist.IDX_MD5["t10k-labels-idx1-ubyte"] in message and actual in message
    # never silently overwritten
    assert target.read_bytes() == bytes(data)


def test_truncated_file_is_reported_not_replaced(mnist_raw_dir, tmp_path):
    raw = _copy(mnist_raw_dir, tmp_path)
    target = raw / "train-labels-idx1-ubyte"
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(mnist.MnistChecksumError, match="train-labels-idx1-ubyte"):
        mnist.ensure_idx_files(raw, "package")
    assert target.stat().st_size == 1000


def test_only_missing_files_are_made(mnist_raw_dir, tmp_path):
    raw = _copy(mnist_raw_dir, tmp_path)
    (raw / "t10k-images-idx3-ubyte").unlink()
    assert mnist.ensure_idx_files(raw, "package") == ["t10k-images-idx3-ubyte"]
    mnist.verify_idx_files(raw)


def test_idx_round_trip_and_bad_header():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(mnist.decode_idx(mnist.encode_idx(array)), array)
    with pytest.raises(ValueError, match="promises"):
        mnist.decode_idx(mnist.encode_idx(array)[:-1])


def test_unknown_method_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST method"):
        mnist.ensure_idx_files(tmp_path / "raw", "carrier-pigeon")
