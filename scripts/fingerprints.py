"""Fingerprints of the study data before training (digits, study_items, raw_annotations,
human_soft_labels), for one configuration environment.

    python scripts/fingerprints.py --env base            # print
    python scripts/fingerprints.py --env base --write    # record in fingerprints.json
    python scripts/fingerprints.py --env base --check    # compare with fingerprints.json
    python scripts/fingerprints.py --env base --threads 1 --check
    python scripts/fingerprints.py --from-data data --check   # the tables a `kedro run` wrote

The stages run in memory (nothing in data/ is read or written) from the MNIST idx files under
data/01_raw/MNIST/raw, so a check from a clean clone needs only those files (the digits
pipeline rebuilds them). See soft_label_audit.fingerprints for the canonical serialisation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--from-data",
        default=None,
        metavar="DATA_ROOT",
        help="read the tables a kedro run of --env wrote under DATA_ROOT instead of running",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args()

    import torch

    from soft_label_audit import fingerprints
    from soft_label_audit.datasets.mnist_idx import MnistIdxDataset

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.from_data:
        import pandas as pd

        data = Path(args.from_data)
        tables = {
            name: pd.read_parquet(data / rel) for name, rel in fingerprints.DATA_PATHS.items()
        }
    else:
        mnist_raw = MnistIdxDataset(path=str(ROOT / "data" / "01_raw" / "MNIST" / "raw")).load()
        tables = fingerprints.run_pre_training_stages(ROOT / "conf", args.env, mnist_raw)
    found = fingerprints.study_fingerprints(tables)
    print(json.dumps({args.env: found}, indent=2))
    print(
        f"({time.perf_counter() - start:.0f} s, torch threads {torch.get_num_threads()})",
        file=sys.stderr,
    )
    path = ROOT / fingerprints.FINGERPRINT_FILE
    if args.write:
        fingerprints.write_entry(path, args.env, found)
        print(f"recorded in {path.name}", file=sys.stderr)
    if args.check:
        expected = fingerprints.read_file(path).get(args.env, {})
        changed = fingerprints.differences(expected, found)
        if changed:
            print(
                f"fingerprints of {args.env!r} differ from {path.name} for: {', '.join(changed)}",
                file=sys.stderr,
            )
            return 1
        print(f"fingerprints of {args.env!r} match {path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
