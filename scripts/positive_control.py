"""Print the positive control's three outcomes (soft_label_audit.positive_control) from the
outputs of ``kedro run --env positive_control``; ``make positive-control`` runs both.

    python scripts/positive_control.py [ENV]    # ENV: positive_control unless given

Exit status 1 when an outcome misses what the testbed must show (positive_control.EXPECTED).
"""

from __future__ import annotations

import sys
from pathlib import Path

from kedro.io import DataCatalog

from soft_label_audit import positive_control
from soft_label_audit.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    env = argv[0] if argv else "positive_control"
    loader = CONFIG_LOADER_CLASS(str(ROOT / "conf"), **CONFIG_LOADER_ARGS, env=env)
    found = positive_control.outcomes_from_catalog(DataCatalog.from_config(loader["catalog"]))
    print(f"positive control (conf/{env}, data under {loader['globals']['data_root']}):")
    for line in found.lines():
        print("  " + line)
    results = positive_control.verdicts(found)
    for name, rule, holds in results:
        print(f"  {'ok  ' if holds else 'MISS'} {name}: {rule}")
    return 0 if all(holds for _, _, holds in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
