"""scripts/crowd_draws.py (make crowd-draws): the study on several draws of the simulated
crowd, each under its own data root, and the summary of how far the claims move between them.
The kedro runs are a fake runner's here: it records the command and leaves the outputs a run
would (provenance records and a claims table)."""

from __future__ import annotations

import importlib.util
import sys

import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT
from tests.helpers import make_project_copy, write_provenance

SCRIPT = PROJECT_ROOT / "scripts" / "crowd_draws.py"
STAGES = ("digits", "annotation", "labels", "training", "evaluation", "reporting")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("crowd_draws", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crowd_draws", module)
    spec.loader.exec_module(module)
    return module


def _claims(effect: float, verdict: str = "inconclusive") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "claim": ["a_accuracy", "a_accuracy", "e_entropy_vs_machine"],
            "source": ["mnist", "synthetic", "mnist"],
            "scope": ["pool", "pool", "test"],
            "metric": ["accuracy", "accuracy", "spearman_entropy"],
            "effect": [effect, -effect, 0.08 + effect],
            "ci_low": [effect - 0.01, -effect - 0.02, 0.05],
            "ci_high": [effect + 0.01, -effect + 0.02, 0.11 + 2 * effect],
            "verdict": [verdict, "inconclusive", "supported"],
        }
    )


def _make_draw(project, seed: int | None, effect: float) -> None:
    """What `kedro run --env test [--params simulated_crowd.seed=SEED]` leaves (records, claims)."""
    runtime = None if seed is None else {"simulated_crowd": {"seed": seed}}
    write_provenance(project, STAGES, "test", runtime)
    root = project / "data" / "test" / ("" if seed in (None, 7) else f"crowd_seed_{seed}")
    (root / "08_reporting").mkdir(parents=True, exist_ok=True)
    _claims(effect).to_csv(root / "08_reporting" / "claims.csv", index=False)


class FakeRunner:
    def __init__(self, project):
        self.project, self.commands = project, []

    def __call__(self, command, cwd) -> int:
        assert cwd == self.project
        self.commands.append(list(command))
        seed = int(command[-1].removeprefix("simulated_crowd.seed="))
        _make_draw(self.project, seed, effect=seed / 1000)
        return 0


@pytest.fixture
def project(tmp_path):
    return make_project_copy(tmp_path)


def test_each_missing_draw_is_one_kedro_run_and_existing_ones_are_skipped(script, project):
    _make_draw(project, None, 0.007)  # the environment's own draw (seed 7), as make run leaves it
    _make_draw(project, 8, 0.008)
    runner, said = FakeRunner(project), []
    draws = script.run_draws([8, 9], "test", project=project, runner=runner, log=said.append)
    assert draws == [7, 8, 9]
    assert runner.commands == [
        ["kedro", "run", "--env", "test", "--params", "simulated_crowd.seed=9"]
    ]
    assert said[0] == (
        "[1/3] crowd seed 7 (the environment's own): up to date under data/test, skipped "
        "(--force reruns it)"
    )
    assert said[1].startswith("[2/3] crowd seed 8: up to date under data/test/crowd_seed_8")
    assert said[2].startswith("[3/3] crowd seed 9: digits, annotation, labels, training")
    assert "under data/test/crowd_seed_9" in said[2]

    # made again: everything is up to date; --force reruns every draw
    runner.commands.clear()
    script.run_draws([8, 9], "test", project=project, runner=runner, log=said.append)
    assert runner.commands == []
    script.run_draws([9], "test", force=True, project=project, runner=runner, log=said.append)
    assert [c[-1] for c in runner.commands] == ["simulated_crowd.seed=7", "simulated_crowd.seed=9"]


def test_a_draw_made_with_other_settings_is_run_again(script, project):
    _make_draw(project, None, 0.007)
    _make_draw(project, 8, 0.008)
    other = {"simulated_crowd": {"seed": 8}, "reporting": {"alpha": 0.1}}
    write_provenance(project, ["reporting"], "test", other)  # a stale reporting record
    runner, said = FakeRunner(project), []
    script.run_draws([8], "test", project=project, runner=runner, log=said.append)
    assert runner.commands == [
        ["kedro", "run", "--env", "test", "--params", "simulated_crowd.seed=8"]
    ]
    assert "reporting missing or stale" in said[1]


def test_a_failed_run_stops(script, project):
    _make_draw(project, None, 0.007)
    with pytest.raises(SystemExit, match="crowd seed 8: .* failed \\(exit 3\\)"):
        script.run_draws([8], "test", project=project, runner=lambda c, cwd: 3, log=print)


def test_the_summary_covers_the_draws_that_match_the_settings(script, project):
    for seed, effect in ((None, 0.007), (8, 0.008), (9, 0.012)):
        _make_draw(project, seed, effect)
    # a draw whose claims are missing is left out and said so
    (project / "data" / "test" / "crowd_seed_10" / "08_reporting").mkdir(parents=True)
    said = []
    summary = script.summarise_draws(project, "test", log=said.append)  # every crowd_seed_*
    assert any(line.startswith("crowd seed 10: left out") for line in said)
    written = pd.read_csv(project / "data" / "test" / "08_reporting" / "crowd_draws.csv")
    assert list(written["claim"]) == ["a_accuracy", "a_accuracy", "e_entropy_vs_machine"]
    row = written.iloc[0]
    assert row["seeds"] == "7 8 9" and row["n_draws"] == 3
    assert [row[f"effect_seed_{s}"] for s in (7, 8, 9)] == pytest.approx([0.007, 0.008, 0.012])
    assert row["effect_mean"] == pytest.approx(0.009)
    assert row["effect_sd"] == pytest.approx(pd.Series([0.007, 0.008, 0.012]).std())
    assert row["half_width_mean"] == pytest.approx(0.01)
    assert row["sd_over_half_width"] == pytest.approx(row["effect_sd"] / 0.01)
    assert (row["n_supported"], row["n_inconclusive"], row["n_contradicted"]) == (0, 3, 0)
    assert written.iloc[2]["n_supported"] == 3
    assert written.iloc[2]["half_width_mean"] == pytest.approx(0.03 + 0.009)
    assert len(summary) == 3
    assert script.summarise_draws(project, "test", [11], log=said.append) is None


def test_summarise_is_a_function_of_the_claims_tables(script):
    own, other = _claims(0.01), _claims(0.02, verdict="supported")
    extra = pd.DataFrame([{**other.iloc[0].to_dict(), "claim": "z_new"}])
    table = script.summarise({7: own, 8: pd.concat([other, extra], ignore_index=True)})
    assert list(table["claim"]) == ["a_accuracy", "a_accuracy", "e_entropy_vs_machine", "z_new"]
    assert table.iloc[0]["n_supported"] == 1 and table.iloc[0]["n_inconclusive"] == 1
    last = table.iloc[3]  # a row of one draw only: no spread
    assert last["n_draws"] == 1 and last["seeds"] == "8" and pd.isna(last["effect_sd"])
    assert pd.isna(last["effect_seed_7"]) and last["effect_seed_8"] == pytest.approx(0.02)


def test_the_scripts_examples_run(script):
    import doctest

    result = doctest.testmod(script, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
