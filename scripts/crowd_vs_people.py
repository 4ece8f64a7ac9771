"""The simulated crowd of a configuration measured against people, without running the study.

    python scripts/crowd_vs_people.py                 # conf/base: the comparison with people
    python scripts/crowd_vs_people.py --env test      # the test configuration's small crowd
    python scripts/crowd_vs_people.py --all           # every crowd_validity check (digits and
                                                      # annotation stages in memory, minutes)
    python scripts/crowd_vs_people.py --params "simulated_crowd.traits.lapse=[0.0, 0.01]"
    python scripts/crowd_vs_people.py --out FILE.csv  # also write the rows

The rows are those of ``crowd_validity.csv`` (soft_label_audit.crowd.validity): the
comparison with people (source ``mnist_test``) runs the crowd of ``simulated_crowd``, same
settings and seed, on the 100 MNIST test images of Northcutt et al. (2021), with those
images left out of its memory. ``--all`` also runs the digits stage and the annotation stage
up to the crowd_validity node in memory (nothing under data/ is read or written besides the
MNIST idx files, which are rebuilt from the offline package when absent).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _params(env: str, overrides: str | None) -> dict:
    from kedro.config import OmegaConfigLoader

    from soft_label_audit.parameter_tree import read_parameters
    from soft_label_audit.settings import CONFIG_LOADER_ARGS

    runtime = {}
    for item in (overrides or "").split(","):
        if item.strip():
            key, _, value = item.partition("=")
            import yaml

            runtime[key.strip()] = yaml.safe_load(value)
    loader = OmegaConfigLoader(
        str(ROOT / "conf"),
        **{**CONFIG_LOADER_ARGS, "default_run_env": env},
        env=env,
        runtime_params=runtime,
    )
    params = dict(loader["parameters"])
    read_parameters(params)  # every value checked, as at a run's start
    return params


def _mnist_raw() -> dict:
    from soft_label_audit.datasets.mnist_idx import MnistIdxDataset

    return MnistIdxDataset(
        path=str(ROOT / "data" / "01_raw" / "MNIST" / "raw"), method="package"
    ).load()


def people_rows(params: dict, mnist_raw: dict):
    from soft_label_audit.crowd import validity
    from soft_label_audit.pipelines.digits.nodes import build_mnist_table

    digits = build_mnist_table(mnist_raw)
    config = validity.ValidityTargets.from_params(params["crowd_validity"]).people
    if not config.enabled:
        raise SystemExit("crowd_validity.people_reference.enabled is false in this configuration")
    return validity.people_reference_table(digits, params["simulated_crowd"], config)


def all_rows(params: dict, mnist_raw: dict):
    """The digits and annotation stages in memory, up to the crowd_validity node."""
    from soft_label_audit.crowd import sources
    from soft_label_audit.fingerprints import run_in_memory

    source = params["annotation"]["source"]
    if not isinstance(sources.get(source), sources.SimulatedCrowd):
        raise SystemExit(
            f"annotation.source is {source!r}: this script measures the simulated crowd"
        )
    catalog = run_in_memory(params, mnist_raw, source, "annotation.check_crowd_validity")
    return catalog.load("crowd_validity").drop(columns=["annotation_source"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--params", default=None, help='like kedro run --params "KEY=VALUE,..."')
    parser.add_argument("--all", action="store_true", help="every crowd_validity check")
    parser.add_argument("--out", default=None, help="also write the rows to this CSV")
    args = parser.parse_args()

    import pandas as pd

    start = time.perf_counter()
    params = _params(args.env, args.params)
    mnist_raw = _mnist_raw()
    table = all_rows(params, mnist_raw) if args.all else people_rows(params, mnist_raw)
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(table.to_string(index=False))
    print(f"({time.perf_counter() - start:.0f} s, env {args.env})", file=sys.stderr)
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
