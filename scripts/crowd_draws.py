"""The study on several draws of the simulated crowd, and how far its effects move between them.

    python scripts/crowd_draws.py --seeds 8 9           # run each draw not yet made, then summarise
    python scripts/crowd_draws.py --seeds 8 9 --force   # rerun every draw
    python scripts/crowd_draws.py --summarise-only      # summarise the draws that exist
    python scripts/crowd_draws.py --env test --seeds 8  # on another environment

Every interval of the study rests on one draw of the simulated crowd (``simulated_crowd.seed``
of the environment, 7 in conf/base). A draw is the whole study, ``kedro run --params
simulated_crowd.seed=S``, written under ``<data_root>/crowd_seed_<S>`` (the config loader routes
it: ``soft_label_audit.config_loader``); each costs one full study. A draw whose claims table
exists and whose provenance records (``<root>/provenance``) are those the current settings give
is not run again (unless ``--force``). The environment's own draw (its ``data_root``, which
``make run`` makes) is always one of the draws and is run too when it is missing or stale.

The summary (:func:`summarise`, one row per claim and source of the claims tables) holds each
draw's effect, the mean and standard deviation of the effect over the draws, the mean half-width
of the claims table's seed-and-item interval (``(ci_high - ci_low) / 2``), their ratio, and how
many draws gave each verdict. It covers the draws whose outputs match the current settings
(column ``seeds``), and is written to ``<data_root>/08_reporting/crowd_draws.csv`` of the
environment's own draw, where ``make results`` finds it.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: the claims table of a draw and the summary, under a data root
CLAIMS = Path("08_reporting") / "claims.csv"
SUMMARY = Path("08_reporting") / "crowd_draws.csv"
VERDICTS = ("supported", "contradicted", "inconclusive")
#: ``runner(command, cwd) -> exit status``
Runner = Callable[[Sequence[str], Path], int]


def _loader(project: Path, env: str | None, seed: int | None = None):
    from soft_label_audit.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    runtime = None if seed is None else {"simulated_crowd": {"seed": seed}}
    return CONFIG_LOADER_CLASS(
        str(project / "conf"), **CONFIG_LOADER_ARGS, env=env, runtime_params=runtime
    )


def own_seed(project: Path, env: str | None) -> int:
    """The environment's own ``simulated_crowd.seed``."""
    return int(_loader(project, env)["parameters"]["simulated_crowd"]["seed"])


def draw_root(project: Path, env: str | None, seed: int) -> Path:
    """Where ``kedro run [--env ENV] --params simulated_crowd.seed=SEED`` writes."""
    return project / _loader(project, env, seed)["globals"]["data_root"]


def kedro_command(env: str | None, seed: int) -> list[str]:
    """The whole study on the crowd draw ``seed``.

    >>> kedro_command(None, 8)
    ['kedro', 'run', '--params', 'simulated_crowd.seed=8']
    >>> kedro_command("test", 9)
    ['kedro', 'run', '--env', 'test', '--params', 'simulated_crowd.seed=9']
    """
    return [
        "kedro",
        "run",
        *(["--env", env] if env else []),
        "--params",
        f"simulated_crowd.seed={seed}",
    ]


def stale_stages(project: Path, env: str | None, seed: int) -> list[str]:
    """The stages of draw ``seed`` whose outputs are missing or were made with other settings
    than the current ones (its provenance records), plus ``claims.csv`` when it is missing:
    empty when the draw is up to date."""
    from soft_label_audit import grid, provenance
    from soft_label_audit.pipeline_registry import register_pipelines

    params = _loader(project, env, seed)["parameters"]
    with grid.following(params):
        graph = provenance.stage_graph(register_pipelines())
    expected = provenance.expected_records(graph, params)
    root = draw_root(project, env, seed)
    on_disk = provenance.read(root)["stages"]
    stale = [
        stage
        for stage in graph
        if (on_disk.get(stage) or {}).get("fingerprint") != expected[stage]["fingerprint"]
    ]
    if not (root / CLAIMS).is_file():
        stale.append(str(CLAIMS))
    return stale


def _subprocess_runner(command: Sequence[str], cwd: Path) -> int:
    # `python -m kedro` of this interpreter: the environment's kedro and the project's CLI
    return subprocess.run([sys.executable, "-m", *command], cwd=cwd, check=False).returncode


def run_draws(
    seeds: Sequence[int],
    env: str | None = None,
    force: bool = False,
    project: Path = ROOT,
    runner: Runner = _subprocess_runner,
    log: Callable[[str], None] = print,
) -> list[int]:
    """Run the whole study on each draw of ``seeds`` (the environment's own draw first) that is
    missing or stale, or on each with ``force``; returns the draws, in that order. Stops with
    :class:`SystemExit` when a run fails."""
    own = own_seed(project, env)
    draws = list(dict.fromkeys([own, *seeds]))
    for number, seed in enumerate(draws, 1):
        root = draw_root(project, env, seed).relative_to(project)
        what = f"[{number}/{len(draws)}] crowd seed {seed}" + (
            " (the environment's own)" if seed == own else ""
        )
        stale = [] if force else stale_stages(project, env, seed)
        if not force and not stale:
            log(f"{what}: up to date under {root}, skipped (--force reruns it)")
            continue
        command = kedro_command(env, seed)
        reason = "forced" if force else f"{', '.join(stale)} missing or stale"
        log(f"{what}: {reason}; running `{' '.join(command)}` (the whole study) under {root}")
        status = runner(command, project)
        if status != 0:
            raise SystemExit(f"crowd seed {seed}: `{' '.join(command)}` failed (exit {status})")
    return draws


def _half_width(rows: pd.DataFrame) -> pd.Series:
    return (rows["ci_high"] - rows["ci_low"]) / 2


def summarise(claims_by_seed: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """How far each claim's effect moves between crowd draws, against its interval.

    ``claims_by_seed``: each draw's claims table (``claims.csv``), by crowd seed, the
    environment's own first. One row per (claim, source), in the order of the first table (then
    rows only later tables have): ``scope`` and ``metric``, ``n_draws`` and ``seeds`` (the
    draws that have the row), ``effect_seed_<S>`` per draw, ``effect_mean`` and ``effect_sd``
    (over draws, n - 1; NaN for one draw), ``half_width_mean`` (the mean over draws of the
    seed-and-item interval's half-width), ``sd_over_half_width`` and ``n_<verdict>`` per verdict.

    >>> one = pd.DataFrame({"claim": ["a"], "source": ["mnist"], "scope": ["test"],
    ...     "metric": ["accuracy"], "effect": [0.010], "ci_low": [0.0], "ci_high": [0.02],
    ...     "verdict": ["supported"]})
    >>> two = one.assign(effect=[0.014], ci_low=[0.004], ci_high=[0.020], verdict=["inconclusive"])
    >>> row = summarise({7: one, 8: two}).iloc[0]
    >>> row.seeds, int(row.n_draws), int(row.n_supported), int(row.n_inconclusive)
    ('7 8', 2, 1, 1)
    >>> [round(float(row[c]), 5) for c in ("effect_sd", "half_width_mean", "sd_over_half_width")]
    [0.00283, 0.009, 0.31427]
    """
    key = ["claim", "source"]
    long = []
    for seed, table in claims_by_seed.items():
        rows = table.assign(seed=int(seed), half_width=_half_width(table))
        long.append(rows[[*key, "scope", "metric", "seed", "effect", "half_width", "verdict"]])
    every = pd.concat(long, ignore_index=True)
    order = every.drop_duplicates(key)[key]
    seeds = [int(s) for s in claims_by_seed]
    out = []
    for claim, source in order.itertuples(index=False):
        rows = every[(every["claim"] == claim) & (every["source"] == source)]
        by_seed = dict(zip(rows["seed"], rows["effect"], strict=True))
        sd = rows["effect"].std(ddof=1) if len(rows) > 1 else float("nan")
        half = rows["half_width"].mean()
        record = {
            "claim": claim,
            "source": source,
            "scope": rows["scope"].iloc[0],
            "metric": rows["metric"].iloc[0],
            "n_draws": len(rows),
            "seeds": " ".join(str(s) for s in rows["seed"]),
            **{f"effect_seed_{s}": by_seed.get(s, float("nan")) for s in seeds},
            "effect_mean": rows["effect"].mean(),
            "effect_sd": sd,
            "half_width_mean": half,
            "sd_over_half_width": sd / half if half > 0 else float("nan"),
            **{f"n_{v}": int((rows["verdict"] == v).sum()) for v in VERDICTS},
        }
        out.append(record)
    return pd.DataFrame(out)


def summarise_draws(
    project: Path = ROOT,
    env: str | None = None,
    seeds: Sequence[int] = (),
    log: Callable[[str], None] = print,
) -> pd.DataFrame | None:
    """Summarise the environment's own draw and the draws ``seeds`` (every ``crowd_seed_*``
    folder of the data root when empty) that exist and match the current settings; write it to
    ``<data_root>/08_reporting/crowd_draws.csv`` and return it (None when fewer than two draws
    are there)."""
    own = own_seed(project, env)
    home = draw_root(project, env, own)
    if not seeds:
        seeds = sorted(
            int(p.name.removeprefix("crowd_seed_"))
            for p in home.glob("crowd_seed_*")
            if p.name.removeprefix("crowd_seed_").isdigit()
        )
    tables = {}
    for seed in dict.fromkeys([own, *seeds]):
        root = draw_root(project, env, seed)
        stale = stale_stages(project, env, seed)
        if stale:
            log(
                f"crowd seed {seed}: left out, {', '.join(stale)} missing or stale under "
                f"{root.relative_to(project)}"
            )
            continue
        tables[seed] = pd.read_csv(root / CLAIMS)
    if len(tables) < 2:
        log(f"{len(tables)} crowd draw(s) up to date: nothing to compare (make crowd-draws)")
        return None
    summary = summarise(tables)
    summary["default_claims_sha256"] = hashlib.sha256((home / CLAIMS).read_bytes()).hexdigest()
    (home / SUMMARY).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(home / SUMMARY, index=False)
    log(
        f"{home.relative_to(project) / SUMMARY}: {len(summary)} claim rows over "
        f"{len(tables)} crowd draws (seeds {' '.join(map(str, tables))})"
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=None,
        help="the other draws (default: 8 9; with --summarise-only, every crowd_seed_* folder)",
    )
    parser.add_argument("--env", default=None, help="the Kedro environment (default: Kedro's)")
    parser.add_argument("--force", action="store_true", help="rerun draws that are up to date")
    parser.add_argument(
        "--summarise-only", action="store_true", help="run nothing; summarise what exists"
    )
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ([] if args.summarise_only else [8, 9])
    if not args.summarise_only:
        run_draws(seeds, args.env, args.force)
    summary = summarise_draws(ROOT, args.env, seeds)
    return 0 if summary is not None else 1


if __name__ == "__main__":
    sys.exit(main())
