"""The study data before training are the same bytes on every machine: the fingerprints of the
test configuration's digits, study split, simulated votes and aggregated labels match the
committed file, here computed with a different torch thread count from the one they were
recorded with (``make fingerprints`` records with one thread)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from soft_label_audit import fingerprints
from tests.conftest import PROJECT_ROOT


def test_canonical_serialisation_ignores_row_order_and_storage_but_not_values():
    frame = pd.DataFrame(
        {
            "item_id": [2, 1],
            "h": [0.1 + 0.2, 0.5],
            "image": [b"\x00\x01", b"\x02\x03"],
            "soft": [[0.25, 0.75], None],
            "ok": [True, False],
            "choice": ["7", "none"],
        }
    )
    shuffled = frame.iloc[::-1].reset_index(drop=True)
    as_arrays = frame.assign(soft=[np.array([0.25, 0.75]), None], h=[0.3, 0.5])  # 0.1 + 0.2 != 0.3
    base = fingerprints.table_fingerprint(frame, ["item_id"])
    assert fingerprints.table_fingerprint(shuffled, ["item_id"]) == base
    assert fingerprints.table_fingerprint(as_arrays, ["item_id"]) == base
    changed = frame.assign(image=[b"\x00\x01", b"\x02\x04"])
    assert fingerprints.table_fingerprint(changed, ["item_id"]) != base
    assert fingerprints.table_fingerprint(frame.assign(ok=[True, True]), ["item_id"]) != base


@pytest.fixture(scope="module")
def test_config_tables(mnist_arrays):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return fingerprints.run_pre_training_stages(PROJECT_ROOT / "conf", "test", mnist_arrays)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def test_config_fingerprints(test_config_tables):
    return fingerprints.study_fingerprints(test_config_tables)


#: the README's example of one's own votes, for the study items of the test configuration
EXAMPLE_VOTES = PROJECT_ROOT / "docs" / "examples" / "votes_test_env.csv"


def test_the_readme_example_vote_file_covers_the_test_configurations_study(test_config_tables):
    """The example runs as the README says (``--env test``): valid votes on every study item
    (the study items are fixed by the fingerprints above)."""
    from soft_label_audit.crowd.inputs import read_votes_file
    from soft_label_audit.crowd.validation import validate_votes

    study_items = test_config_tables["study_items"]
    votes = validate_votes(read_votes_file(EXAMPLE_VOTES), study_items, str(EXAMPLE_VOTES))
    assert set(votes["item_id"]) == set(study_items["item_id"])
    assert list(pd.read_csv(EXAMPLE_VOTES, nrows=0).columns) == [
        "item_id",
        "annotator_id",
        "choice",
        "unsure",
        "response_time",
    ]


def test_fingerprints_of_the_test_configuration_match_the_committed_file(test_config_fingerprints):
    expected = fingerprints.read_file(PROJECT_ROOT / fingerprints.FINGERPRINT_FILE)
    assert set(expected) >= {"base", "test"}, "record both with `make fingerprints`"
    changed = fingerprints.differences(expected["test"], test_config_fingerprints)
    assert not changed, (
        f"{changed} differ from {fingerprints.FINGERPRINT_FILE}: either the data before training "
        "now depend on the machine or thread count, or a deliberate change needs `make fingerprints`"
    )
