"""Benchmark: the project's trainer against a plain reference loop (`make bench`).

Both train K runs of the study CNN (``conf/base/parameters_training.yml``: model, batch size,
optimizer) on MNIST-shaped data (random 28x28 bytes, soft targets) in one process, on cuda
when available:

* trainer: :func:`soft_label_audit.trainer.train_runs` with dynamics recording on (vectorised
  over the K runs on a GPU; on a CPU the lean loop, ``parallel_runs`` runs at a time in threads),
  validation curves every epoch;
* reference: one run after another, as a user would first write it: ``TensorDataset`` +
  ``DataLoader(shuffle=True)``, the optimizer, ``F.cross_entropy`` with probability targets,
  a validation pass every epoch; no dynamics.

Prints the device, K, sample-updates per second (runs x epochs x training items / seconds, best
of the interleaved repeats) for each, and their ratio (trainer / reference).
Targets: >= 0.9 on a CPU, >= 4 on a GPU at K=16.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# runnable from a bare checkout too (e.g. on a GPU machine without the project installed)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from soft_label_audit.trainer import (  # noqa: E402
    ModelConfig,
    TrainConfig,
    TrainData,
    build_model,
    resolve_device,
    train_runs,
)
from soft_label_audit.trainer.model import images_to_tensor  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def training_params() -> dict:
    # PyYAML rather than Kedro's config loader: the benchmark must run where only torch and
    # numpy (plus PyYAML) are installed, such as a lent GPU machine.
    import yaml

    return dict(
        yaml.safe_load((PROJECT / "conf" / "base" / "parameters_training.yml").read_text())[
            "training"
        ]
    )


def make_data(n_train: int, n_val: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n_train + n_val, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_train + n_val)
    targets = (0.7 * np.eye(10)[labels] + 0.3 * rng.dirichlet(np.ones(10), n_train + n_val)).astype(
        np.float32
    )
    data = TrainData(
        images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], images[:0]
    )
    return data, targets[:n_train], targets[n_train:]


def reference_loop(
    data: TrainData,
    targets,
    val_targets,
    seeds,
    model_config: ModelConfig,
    config: TrainConfig,
    device: torch.device,
) -> float:
    """One run after another with a DataLoader; returns seconds."""
    x, t = images_to_tensor(data.train_images), torch.as_tensor(targets)
    x_val, t_val = (
        images_to_tensor(data.val_images).to(device),
        torch.as_tensor(val_targets).to(device),
    )
    y_val = torch.as_tensor(data.val_labels).to(device)
    start = time.perf_counter()
    for seed in seeds:
        model = build_model(model_config, int(seed)).to(device)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        loader = DataLoader(
            TensorDataset(x, t),
            batch_size=config.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(int(seed)),
        )
        for _ in range(config.epochs):
            model.train()
            for xb, tb in loader:
                xb, tb = xb.to(device), tb.to(device)
                optimizer.zero_grad()
                loss = F.cross_entropy(model(xb), tb)
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                logits = model(x_val)
                val_loss = F.cross_entropy(logits, t_val).item()
                val_acc = (logits.argmax(1) == y_val).float().mean().item()
    del val_loss, val_acc
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def project_trainer(data, targets, val_targets, seeds, model_config, config) -> float:
    k = len(seeds)
    result = train_runs(
        data,
        np.repeat(targets[None], k, 0),
        np.repeat(val_targets[None], k, 0),
        seeds,
        model_config,
        config,
        record_dynamics=True,
        desc="bench",
    )
    assert result.dynamics is not None and result.dynamics.shape[:2] == (k, config.epochs)
    return result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="K (default: 16 on cuda, 4 on cpu)")
    parser.add_argument("--items", type=int, default=600, help="training items per run")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timings per side (interleaved); the best is reported",
    )
    args = parser.parse_args()

    params = training_params()
    device = resolve_device("auto")
    k = args.runs or (16 if device.type == "cuda" else 4)
    model_config = ModelConfig.from_params(params["model"])
    config = TrainConfig.from_params(
        {**params, "epochs": args.epochs, "progress": False, "device": str(device)}
    )
    threads = config.num_threads or os.cpu_count()
    torch.set_num_threads(threads)
    data, targets, val_targets = make_data(args.items, max(args.items // 3, 1))
    seeds = list(range(k))

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {threads} threads)"
    )
    print(f"device: {name}")
    print(
        f"K = {k} runs, {args.items} items, {args.epochs} epochs, batch {config.batch_size}, "
        f"model {model_config}, optimizer {config.optimizer} lr {config.lr}"
    )
    # warm-up: first calls pay for kernel selection and allocations
    project_trainer(
        data,
        targets,
        val_targets,
        seeds[:1],
        model_config,
        TrainConfig(**{**config.__dict__, "epochs": 1}),
    )
    reference_loop(
        data,
        targets,
        val_targets,
        seeds[:1],
        model_config,
        TrainConfig(**{**config.__dict__, "epochs": 1}),
        device,
    )

    updates = k * args.epochs * args.items
    ours, ref = [], []
    for _ in range(args.repeats):  # interleaved, so background load hits both sides alike
        ref.append(
            updates
            / reference_loop(data, targets, val_targets, seeds, model_config, config, device)
        )
        ours.append(
            updates / project_trainer(data, targets, val_targets, seeds, model_config, config)
        )
    # best of N, as timeit does: background load only ever slows a repeat down
    ours_m, ref_m = max(ours), max(ref)
    if config.vectorise == "always" or (config.vectorise == "auto" and device.type == "cuda"):
        mode = f"{k} runs vectorised"
    else:
        workers = min(k, threads if config.parallel_runs == "auto" else int(config.parallel_runs))
        mode = f"plain loop, {workers} runs at a time"
    print(
        f"reference loop        : {ref_m:10.0f} sample-updates/s best  (runs: {', '.join(f'{v:.0f}' for v in ref)})"
    )
    print(
        f"trainer ({mode}, dynamics on): {ours_m:10.0f} sample-updates/s best  "
        f"(runs: {', '.join(f'{v:.0f}' for v in ours)})"
    )
    print(
        f"ratio trainer / reference: {ours_m / ref_m:.2f} best of {args.repeats}, "
        f"{statistics.median(ours) / statistics.median(ref):.2f} median  (target: >= 0.9 on cpu, >= 4 on a GPU at K=16)"
    )


if __name__ == "__main__":
    main()
