"""Benchmark: the cross-fitted teacher's folds one after another against folds at once
(`make bench-teacher`).

Both sides train the ``machine_soft`` teacher of ``conf/base/parameters_labels.yml``
(``labels.teacher`` on top of ``training``: model, batch size, optimizer, k folds, threads) with
:func:`soft_label_audit.trainer.cross_fit_teacher` on the same MNIST-shaped data (random 28x28
bytes and labels, the default study's 600 training and 400 other MNIST items) in one process:

* one after another: ``parallel_runs: 1``, each fold on ``num_threads`` intra-op threads (how
  the teacher trained before);
* at once: the configured ``parallel_runs`` (``auto``: ``num_threads`` folds at a time, each in
  a thread of its own with one intra-op thread, as the students' runs train).

Prints sample-updates per second (folds x epochs x each fold's training items / wall-clock
seconds, best of the interleaved repeats) for each, their ratio (at once / one after another),
and the largest difference between the two teachers' logits (the same numbers to float
tolerance). Fewer epochs than the study's teacher (30) keep it short; the rate does not depend
on them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

# runnable from a bare checkout too (e.g. on a GPU machine without the project installed)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from soft_label_audit.parameter_tree import read_teacher  # noqa: E402
from soft_label_audit.trainer import cross_fit_teacher, resolve_device  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def teacher_config(epochs: int):
    """The study's teacher (PyYAML rather than Kedro's config loader: the benchmark must run
    where only torch, numpy and PyYAML are installed)."""
    import yaml

    conf = PROJECT / "conf" / "base"
    training = yaml.safe_load((conf / "parameters_training.yml").read_text())["training"]
    own = yaml.safe_load((conf / "parameters_labels.yml").read_text())["labels"]["teacher"]
    return read_teacher({**own, "epochs": epochs, "progress": False}, training, "teacher")


def make_data(n_train: int, n_other: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_train + n_other
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, n), np.arange(n) < n_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=600, help="training items (cross-fitted)")
    parser.add_argument("--others", type=int, default=400, help="val/test items (predicted)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timings per side (interleaved); the best counts"
    )
    args = parser.parse_args()

    config = teacher_config(args.epochs)
    train = config.train
    device = resolve_device(train.device)
    threads = min(train.num_threads or os.cpu_count() or 1, os.cpu_count() or 1)
    sides = {
        "one after another": replace(train, parallel_runs=1),
        "at once": train,
    }
    images, labels, is_train = make_data(args.items, args.others)

    def fit(side: str, epochs: int | None = None):
        side_config = sides[side] if epochs is None else replace(sides[side], epochs=epochs)
        return cross_fit_teacher(
            images, labels, is_train, config.model, side_config, config.k_folds, config.seed
        )

    name = (
        f"cpu ({platform.processor() or platform.machine()}, {threads} threads)"
        if device.type == "cpu"
        else f"{device.type} (folds one after another on either side)"
    )
    print(f"device: {name}")
    print(
        f"teacher: {config.k_folds} folds of {args.items} training items, {args.others} others, "
        f"{args.epochs} epochs, batch {train.batch_size}, model {config.model}, "
        f"optimizer {train.optimizer} lr {train.lr}, parallel_runs {train.parallel_runs}"
    )
    for side in sides:  # warm-up: first calls pay for kernel selection and allocations
        fit(side, epochs=1)

    rates: dict[str, list[float]] = {side: [] for side in sides}
    teachers = {}
    for _ in range(args.repeats):  # interleaved, so background load hits both sides alike
        for side in sides:
            teachers[side] = fit(side)
            rates[side].append(teachers[side].sample_updates / teachers[side].seconds)
    for side, values in rates.items():
        at_once = teachers[side].folds_at_once
        print(
            f"{side:18s} ({at_once} fold{'s' if at_once > 1 else ''} at a time): "
            f"{max(values):8.0f} sample-updates/s best  "
            f"(runs: {', '.join(f'{v:.0f}' for v in values)})"
        )
    best = max(rates["at once"]) / max(rates["one after another"])
    median = statistics.median(rates["at once"]) / statistics.median(rates["one after another"])
    print(
        f"ratio at once / one after another: {best:.2f} best of {args.repeats}, {median:.2f} median"
    )
    diff = np.abs(teachers["at once"].logits - teachers["one after another"].logits).max()
    print(f"largest logit difference between the two teachers: {diff:.2e}")


if __name__ == "__main__":
    main()
