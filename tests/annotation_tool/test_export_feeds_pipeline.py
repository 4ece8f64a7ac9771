"""The tool's export runs through the `annotation` pipeline into `human_soft_labels`."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from soft_label_audit.annotation_tool import db, store
from soft_label_audit.annotation_tool.cli import main
from soft_label_audit.annotation_tool.web import create_app
from soft_label_audit.columns import H_COLS
from soft_label_audit.datasets.annotation_files import AnnotationInputDataset
from soft_label_audit.pipelines.annotation.pipeline import create_pipeline

from ..conftest import PROJECT_ROOT
from ..helpers import run_in_memory
from .conftest import Api, make_study_items

N_STUDY = 5
#: per annotator, the answer given to the k-th item shown: (choice, unsure)
ANSWERS = {
    0: [("3", False), ("none", False), ("7", True), ("1", False), ("1", False)],
    1: [("3", True), ("8", False), ("7", False), ("2", False), ("none", True)],
}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_runs_through_the_annotation_pipeline(tmp_path, make_db, mnist_digits, suffix):
    engine = make_db(n_study=N_STUDY, n_checks=0, votes_per_item=2, name="feed.db")
    client = create_app(engine).test_client()
    for k in ANSWERS:
        api = Api(client, store.add_annotator(engine)[1])
        for choice, unsure in ANSWERS[k]:
            _, r = api.vote_current(choice=choice, unsure=unsure, response_time=0.3)
            assert r.status_code == 201
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    out = tmp_path / f"votes{suffix}"
    # these votes come as fast as the test client sends them: keep them all
    r = CliRunner().invoke(
        main, ["export", "--db", url, "--out", str(out), "--max-fast-share", "1"]
    )
    assert r.exit_code == 0, r.output

    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_annotation.yml").read_text())
    annotation = {
        **params["annotation"],
        "source": "raw_file",
        "raw_path": str(out),
        "aggregation": "vote_share",
    }
    annotation_input = AnnotationInputDataset(source="raw_file", raw_path=str(out)).load()
    digits = mnist_digits.assign(machine_soft_label=None)
    pipeline = create_pipeline().to_outputs("human_soft_labels")
    outputs = run_in_memory(
        pipeline,
        {
            "annotation_input": annotation_input,
            "digits": digits,
            "study_items": make_study_items(mnist_digits, N_STUDY),
            "params:annotation": annotation,
            "params:simulated_crowd": params["simulated_crowd"],
        },
    )
    labels = outputs["human_soft_labels"].set_index("item_id")
    assert sorted(labels.index) == list(range(N_STUDY))
    assert (labels["annotation_source"] == "raw_file").all()

    # vote shares recomputed from the database by hand
    with db.open_database(url).begin() as conn:
        votes = pd.DataFrame(conn.execute(db.votes.select()).mappings().all())
    for item_id, group in votes.groupby("item_id"):
        expected = {c: 0.0 for c in H_COLS}
        for choice in group["choice"]:
            expected["h_none" if choice == "none" else f"h_{choice}"] += 1 / len(group)
        assert labels.loc[item_id, list(H_COLS)].tolist() == pytest.approx(list(expected.values()))
