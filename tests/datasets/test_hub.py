"""The released annotations by name (hf://datasets/...), against a local copy in the hub's layout.

The hub cannot be reached from CI: the endpoint is pointed at a closed local port, so
``huggingface_hub.snapshot_download`` fails to connect exactly as it does offline, and then
reads the repository from a cache folder the test builds in the hub's cache layout
(``datasets--OWNER--NAME/refs/main`` -> ``snapshots/<commit>/data/*.parquet``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from soft_label_audit.datasets import hub
from soft_label_audit.datasets.annotation_files import AnnotationInputDataset

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "released_annotations_small.parquet"
URL = "hf://datasets/majapavlo/image-level-soft-label-digits"
COMMIT = "4f1c2d9e0a7b8c6d5e4f3a2b1c0d9e8f7a6b5c4d"


@pytest.fixture(autouse=True)
def hub_unreachable(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub_cache(tmp_path) -> Path:
    """The released fixture split in two parquet files, as a cached snapshot of the dataset."""
    repo = tmp_path / "hub" / "datasets--majapavlo--image-level-soft-label-digits"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    data = repo / "snapshots" / COMMIT / "data"
    data.mkdir(parents=True)
    frame = pd.read_parquet(FIXTURE)
    frame.iloc[:4].to_parquet(data / "test-00000-of-00001.parquet")
    frame.iloc[4:].to_parquet(data / "train-00000-of-00001.parquet")
    (repo / "snapshots" / COMMIT / "README.md").write_text("---\nlicense: cc-by-sa-4.0\n---\n")
    return tmp_path / "hub"


def test_parse_hub_path():
    assert hub.parse_hub_path(URL) == hub.HubPath("majapavlo/image-level-soft-label-digits")
    assert hub.parse_hub_path(URL + "@v1.0/data/train.parquet") == hub.HubPath(
        "majapavlo/image-level-soft-label-digits", "v1.0", "data/train.parquet"
    )
    with pytest.raises(Exception, match="not a Hugging Face dataset path"):
        hub.parse_hub_path("hf://datasets/just-a-name")


def test_released_annotations_load_by_name_from_the_cache(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub_cache))
    dataset = AnnotationInputDataset(source="released", released_path=URL)
    assert dataset.exists()
    loaded = dataset.load()
    expected = pd.read_parquet(FIXTURE)
    # test split file first, then train: the repository's files in name order
    expected = pd.concat([expected.iloc[:4], expected.iloc[4:]], ignore_index=True)
    assert loaded.source == "released" and loaded.path == URL
    pd.testing.assert_frame_equal(loaded.frame, expected)


def test_one_file_of_the_repository(hub_cache):
    frames = hub.download_parquet_files(
        URL + "/data/train-00000-of-00001.parquet", cache_dir=str(hub_cache)
    )
    assert [p.name for p in frames] == ["train-00000-of-00001.parquet"]


def test_offline_without_cache_says_the_hub_cannot_be_reached_and_how_to_pass_a_file(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    dataset = AnnotationInputDataset(source="released", released_path=URL)
    with pytest.raises(hub.HubUnreachableError) as info:
        dataset.load()
    message = str(info.value)
    assert "cannot reach the Hugging Face hub" in message and URL in message
    assert "annotation.source=released,annotation.released_path=" in message
    assert len(message.splitlines()) < 5


def test_local_files_still_load_and_missing_ones_are_named(tmp_path):
    copy = tmp_path / "released.parquet"
    shutil.copy(FIXTURE, copy)
    assert len(AnnotationInputDataset(source="released", released_path=str(copy)).load().frame) == 9
    missing = AnnotationInputDataset(
        source="released", released_path=str(tmp_path / "nope.parquet")
    )
    assert not missing.exists()
    with pytest.raises(Exception, match="does not exist"):
        missing.load()
