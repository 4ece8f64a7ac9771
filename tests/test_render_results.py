"""scripts/render_results.py: docs/results.md carries every generated table, the README the
claims table and figure, both between their markers and both read from data/08_reporting."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "render_results.py"
MARKERS = "<!-- results:start -->\n<!-- results:end -->\n"


def _render(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--data",
            str(tmp_path / "data"),
            "--readme",
            str(tmp_path / "README.md"),
            "--page",
            str(tmp_path / "docs" / "results.md"),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_page_gets_the_tables_and_the_readme_the_claims_and_their_figure(tmp_path):
    report = tmp_path / "data" / "08_reporting"
    (report / "figures").mkdir(parents=True)
    claims = pd.DataFrame(
        {
            "claim": ["a_accuracy"],
            "source": ["mnist"],
            "metric": ["accuracy"],
            "comparison": ["human_soft - original_hard"],
            "effect": [0.0123],
            "ci_low": [-0.01],
            "ci_high": [0.03],
            "p_adjusted": [1.0],
            "verdict": ["inconclusive"],
        }
    )
    claims.to_csv(report / "claims.csv", index=False)
    pd.DataFrame(
        {
            "source": ["mnist"],
            "condition": ["human_soft"],
            "accuracy__mean": [0.9876],
            "accuracy__std": [0.01],
        }
    ).to_csv(report / "study_summary.csv", index=False)
    (report / "figures" / "claims.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# how-to first\n\n" + MARKERS + "\n## after\n")
    (tmp_path / "docs" / "results.md").write_text("# results\n\n" + MARKERS)

    assert _render(tmp_path, "--check").returncode == 1  # nothing generated yet
    done = _render(tmp_path)
    assert done.returncode == 0, done.stderr
    readme = (tmp_path / "README.md").read_text()
    page = (tmp_path / "docs" / "results.md").read_text()
    assert readme.startswith("# how-to first") and readme.endswith("## after\n")
    assert "0.012" in readme and "0.988" not in readme  # the claims, not the other tables
    assert "](docs/figures/claims.png)" in readme and "](docs/results.md)" in readme
    assert "0.012" in page and "0.988 ± 0.010" in page
    assert (tmp_path / "docs" / "figures" / "claims.png").read_bytes() == b"\x89PNG not really"
    assert "Secondary check" not in readme  # no band claim in this table
    assert _render(tmp_path, "--check").returncode == 0
    (report / "figures" / "claims.png").write_bytes(b"\x89PNG another")
    assert _render(tmp_path, "--check").returncode == 1  # the README's figure is stale


def test_the_power_section_lists_each_claims_designs(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_results", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    report = tmp_path / "08_reporting"
    report.mkdir()
    base = {
        "scope": "test",
        "source": "mnist",
        "metric": "ece_15",
        "target_effect": 0.01,
        "var_seed": 1e-6,
        "var_item": 4e-4,
        "var_residual": 9e-4,
        "n_seeds": 6,
        "n_items": 1200,
        "power_at_study": 0.31,
    }
    rows = [
        {
            **base,
            "claim": "c",
            "band_share": 0.25,
            "design_seeds": s,
            "design_items": n,
            "design_band_items": None if n is None else n * 0.25,
        }
        for s, n in ((3, None), (6, 36000), (20, 9100))
    ] + [
        {
            **base,
            "claim": "d",
            "band_share": 1.0,
            "var_seed": None,
            "design_seeds": s,
            "design_items": None,
            "design_band_items": None,
        }
        for s in (3, 40)
    ]
    pd.DataFrame(rows).to_csv(report / "power.csv", index=False)
    text = module.power(module.Inputs(tmp_path, report))
    lines = text.splitlines()
    assert len(lines) == 2 + 2 + 2  # intro, blank, header, rule, a row per claim and source
    assert "| c | test | mnist | `ece_15` | 0.010 | 0.31 (6 × 1.2k) | 0.001 / 0.02 / 0.03 |" in text
    assert "6 × 36k (9k in band), 20 × 9.1k (2.27k in band)" in lines[-2]
    assert lines[-1].endswith("| n/a | none up to 40 seeds |")
    # the README's digest says what the design can detect, claim by claim, from the same rows
    detectable = module.budget(module.Inputs(tmp_path, report))
    assert detectable.startswith("**What this design can detect**")
    assert "no claim has 80% power against its target." in detectable
    assert (
        "- c (mnist, test, target 0.010): power 0.31 now; 80% needs at least 6 seeds "
        "(36k items, 9k in the band), or 36k items, 9k in the band at 6 seeds" in detectable
    )
    assert (
        "- d (mnist, test, target 0.010): power 0.31 now; 80% needs no design up to 40 seeds"
        in (detectable)
    )
    reached = pd.DataFrame(rows).assign(power_at_study=0.9)
    reached.to_csv(report / "power.csv", index=False)
    assert module.budget(module.Inputs(tmp_path, report)).endswith(
        "80% power against the target for c (mnist, test, target 0.010); "
        "d (mnist, test, target 0.010)."
    )


def test_a_band_claims_contrast_is_shown_beside_the_claims_table(tmp_path):
    report = tmp_path / "data" / "08_reporting"
    report.mkdir(parents=True)
    row = {
        "claim": "c_hard_items",
        "source": "mnist",
        "metric": "brier",
        "comparison": "human_soft - original_hard on high band (and its excess over the other items)",
        "effect": 0.004,
        "ci_low": -0.02,
        "ci_high": 0.03,
        "p_adjusted": 1.0,
        "verdict": "inconclusive",
        "contrast_effect": -0.0567,
        "contrast_ci_low": -0.09,
        "contrast_ci_high": -0.02,
        "contrast_p_value": 0.004,
    }
    other = {**row, "claim": "a_accuracy", "metric": "accuracy", "contrast_effect": None}
    pd.DataFrame([row, other]).to_csv(report / "claims.csv", index=False)
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(MARKERS)
    (tmp_path / "docs" / "results.md").write_text(MARKERS)
    assert _render(tmp_path).returncode == 0
    page = (tmp_path / "docs" / "results.md").read_text()
    lines = [
        line
        for line in page.splitlines()
        if line.startswith("| c_hard_items | mnist | `brier` | -0.057")
    ]
    assert lines == ["| c_hard_items | mnist | `brier` | -0.057 | [-0.090, -0.020] | 0.004 |"]
    assert page.count("| a_accuracy |") == 1  # its claims row, no contrast row


def _crowd_draws_row(claim: str, source: str, sd: float, **extra) -> dict:
    return {
        "claim": claim,
        "source": source,
        "scope": "pool",
        "metric": "accuracy",
        "n_draws": 3,
        "seeds": "7 8 9",
        "effect_seed_7": -0.004,
        "effect_seed_8": -0.002,
        "effect_seed_9": -0.0061,
        "effect_mean": -0.0040,
        "effect_sd": sd,
        "half_width_mean": 0.004,
        "sd_over_half_width": sd / 0.004,
        "n_supported": 0,
        "n_contradicted": 0,
        "n_inconclusive": 3,
        **extra,
    }


def test_the_spread_between_crowd_draws_is_shown_when_made(tmp_path):
    import hashlib

    report = tmp_path / "data" / "08_reporting"
    report.mkdir(parents=True)
    claims = pd.DataFrame(
        {
            "claim": ["a_accuracy", "f_vs_permuted"],
            "source": ["mnist", "mnist"],
            "metric": ["accuracy", "nll"],
            "comparison": ["human_soft - original_hard", "x - y"],
            "effect": [-0.004, -0.036],
            "ci_low": [-0.008, -0.042],
            "ci_high": [0.0006, -0.030],
            "p_adjusted": [0.9, 0.0001],
            "verdict": ["inconclusive", "supported"],
        }
    )
    claims.to_csv(report / "claims.csv", index=False)
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# r\n\n" + MARKERS)
    (tmp_path / "docs" / "results.md").write_text("# p\n\n" + MARKERS)

    # no crowd_draws.csv: the README says how to make it, the page has no such section
    assert _render(tmp_path).returncode == 0
    readme = (tmp_path / "README.md").read_text()
    assert "**Between crowd draws**" in readme and "`make crowd-draws`" in readme
    assert "sd / half-width" not in readme
    assert "Between crowd draws" not in (tmp_path / "docs" / "results.md").read_text()
    assert _render(tmp_path, "--check").returncode == 0

    sha = hashlib.sha256((report / "claims.csv").read_bytes()).hexdigest()
    pd.DataFrame(
        [
            _crowd_draws_row("a_accuracy", "mnist", 0.00205, default_claims_sha256=sha),
            _crowd_draws_row(
                "f_vs_permuted",
                "mnist",
                0.001,
                metric="nll",
                n_supported=2,
                n_inconclusive=1,
                default_claims_sha256=sha,
            ),
        ]
    ).to_csv(report / "crowd_draws.csv", index=False)
    assert _render(tmp_path, "--check").returncode == 1  # the new table is not shown yet
    assert _render(tmp_path).returncode == 0
    readme = (tmp_path / "README.md").read_text()
    page = (tmp_path / "docs" / "results.md").read_text()
    for text in (readme, page):
        assert "3 draws of the simulated crowd (`simulated_crowd.seed` 7, 8, 9; 7 is" in text
        assert "stale" not in text
    # the README: the headline claims only, without each draw's effect
    assert "| a_accuracy | mnist | -0.004 ± 0.002 | 0.004 | 0.51 | 3 inconclusive |" in readme
    assert "| f_vs_permuted |" not in readme.split("**Between crowd draws**")[1]
    assert "effect, seed 8" not in readme
    # the page: every claim, with each draw's effect
    assert (
        "| a_accuracy | mnist | pool | `accuracy` | -0.004 | -0.002 | -0.006 | -0.004 ± 0.002 "
        "| 0.004 | 0.51 | 3 inconclusive |" in page
    )
    assert "| f_vs_permuted | mnist | pool | `nll` |" in page
    assert "2 supported, 1 inconclusive" in page
    # the generated summary: sd 0.00205 and 0.001 against a half-width of 0.004 (0.51, 0.25);
    # f_vs_permuted's verdict differs between draws
    assert (
        "Of these 2 rows, the effect's sd between draws is under half the interval's "
        "half-width on 1, between half and one on 1, and at least the half-width on 0; the "
        "verdict differs between draws on 1 (f_vs_permuted (mnist))." in page
    )
    assert (
        "Of this row, the effect" in readme and "the verdict differs between draws on 0." in readme
    )
    assert _render(tmp_path, "--check").returncode == 0

    # the default study made again since: the table says it is stale
    claims.assign(effect=[-0.005, -0.036]).to_csv(report / "claims.csv", index=False)
    assert _render(tmp_path).returncode == 0
    assert "**stale**" in (tmp_path / "README.md").read_text()
