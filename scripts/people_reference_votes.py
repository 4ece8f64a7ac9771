"""Write the people's reference votes (Northcutt et al. 2021, MTurk validation of 100 MNIST test
images) as a long vote file for the raw-file route.

    python scripts/people_reference_votes.py            # docs/examples/votes_northcutt2021_mnist.csv
    python scripts/people_reference_votes.py --check    # exit 1 when the file is not what it gives

Columns ``item_id, annotator_id, choice, unsure``: five rows per image, item ids in the
project's 70k ordering (60000 + the MNIST test index). The release names no workers, so every
vote has its own annotator ``mturk_<MNIST test index>_<k>``: each annotator casts one vote, and
annotator statistics (agreement per annotator, Dawid-Skene) carry no information about real
workers. "neither" (the worker rejected both offered labels) becomes "none"; no vote is
unsure. See soft_label_audit.crowd.people_reference.reference_votes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path("docs/examples/votes_northcutt2021_mnist.csv")


def render() -> str:
    from soft_label_audit.crowd import people_reference

    votes = people_reference.reference_votes(people_reference.load_reference())
    votes["unsure"] = votes["unsure"].map({False: "false", True: "true"})
    return votes.to_csv(index=False, lineterminator="\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / OUT))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text, path = render(), Path(args.out)
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(
                f"{path} differs from the shipped reference: run {Path(__file__).name}",
                file=sys.stderr,
            )
            return 1
        return 0
    path.write_text(text)
    print(f"{path}: {text.count(chr(10)) - 1} votes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
