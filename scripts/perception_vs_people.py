"""How candidate perception models read the 100 people-reference images (evidence behind the
crowd's perception model; results in docs/crowd_perception.md).

    python scripts/perception_vs_people.py                # kNN/PCA variants (about a minute)
    python scripts/perception_vs_people.py --cnn 0 1 2    # also a CNN per seed (about 1 min each)
    python scripts/perception_vs_people.py --cnn 7 --crowd  # and the people rows of the crowd
                                                          # of conf/base seeing with that CNN

Every model learns from the crowd's memory as the comparison with people builds it
(``collection.crowd_memory`` of conf/base's ``simulated_crowd`` with the reference images
left out) and looks at the images without viewing noise. Per model: the share of the 100
images whose most likely digit is the dataset label (``given``; people keep it on 85), the
label confident learning proposed (``guessed``) or another digit; ``agree``, the share of
the 98 images with a people majority where that reading is the majority's category; and the
accuracy on 2,000 MNIST training images (never in the memory), which says the model reads
ordinary digits. ``--crowd`` runs the whole crowd (its traits, viewing noise and decisions)
with the CNN's evidence in place of each profile's kNN evidence (atypicality still from the
profile's kNN) and prints the people rows of ``crowd_validity``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _data():
    from kedro.config import OmegaConfigLoader

    from soft_label_audit.columns import MNIST_TRAIN_IDS
    from soft_label_audit.crowd import collection, people_reference, simulated
    from soft_label_audit.data_sources.tables import images_from_column
    from soft_label_audit.datasets.mnist_idx import MnistIdxDataset
    from soft_label_audit.parameter_tree import read_parameters
    from soft_label_audit.pipelines.digits.nodes import build_mnist_table
    from soft_label_audit.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "base"}, env="base"
    )
    params = dict(loader["parameters"])
    read_parameters(params)
    raw = MnistIdxDataset(path=str(ROOT / "data" / "01_raw" / "MNIST" / "raw"), method="package")
    digits = build_mnist_table(raw.load())
    reference = people_reference.load_reference()
    config = simulated.CrowdConfig.from_params(params["simulated_crowd"])
    memory = collection.crowd_memory(digits, config, exclude_ids=reference["item_id"])
    rows = people_reference.reference_images(digits, reference)
    train = digits[digits["item_id"].isin(MNIST_TRAIN_IDS)].sample(2000, random_state=0)
    return {
        "params": params,
        "config": config,
        "reference": reference,
        "memory": (images_from_column(memory["image"]), memory["original_label"].to_numpy()),
        "images": images_from_column(rows["image"]),
        "check": (images_from_column(train["image"]), train["original_label"].to_numpy()),
    }


def _report(name: str, evidence: np.ndarray, check_pred: np.ndarray, data, seconds: float):
    from soft_label_audit.crowd import people_reference

    ref = data["reference"]
    given, guessed = ref["given_label"].to_numpy(), ref["guessed_label"].to_numpy()
    pred = evidence.argmax(axis=1)
    category = np.where(pred == given, 0, np.where(pred == guessed, 1, 2))
    people = people_reference.majority(people_reference.people_counts(ref))
    has = people >= 0
    print(
        f"{name:44s} given {np.mean(category == 0):.2f}  guessed {np.mean(category == 1):.2f}  "
        f"other {np.mean(category == 2):.2f}  agree {np.mean(category[has] == people[has]):.2f}  "
        f"accuracy {np.mean(check_pred == data['check'][1]):.3f}  ({seconds:.0f} s)",
        flush=True,
    )


def knn_variants(data) -> None:
    from soft_label_audit.crowd.perception import NearestNeighbourObserver
    from soft_label_audit.data_sources.geometry import CENTRE, warp

    images, labels = data["memory"]
    query = np.concatenate([data["images"], data["check"][0]]).astype(np.float64) / 255.0
    n_ref = len(data["images"])

    def rotated(x, degrees, scale=1.0):
        th = np.deg2rad(degrees)
        a = np.broadcast_to(
            np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) / scale, (len(x), 2, 2)
        ).copy()
        return warp(x, a, CENTRE - a @ CENTRE)

    from scipy import ndimage

    x01 = images.astype(np.float64) / 255.0
    augment = {
        "": None,
        " + memory rotated +-12 deg": [rotated(x01, -12), rotated(x01, 12)],
        " + memory scaled 0.85, 1.15": [rotated(x01, 0, 0.85), rotated(x01, 0, 1.15)],
        " + memory strokes thicker, thinner": [
            ndimage.grey_dilation(x01, size=(1, 2, 2)),
            ndimage.grey_erosion(x01, size=(1, 2, 2)),
        ],
    }
    settings = [(40, 5, "")] + [(c, 5, "") for c in (15, 80, 200)] + [(40, 1, ""), (40, 20, "")]
    settings += [(40, 5, k) for k in augment if k]
    for n_components, j, extra in settings:
        start = time.perf_counter()
        mem_images, mem_labels = images, labels
        if augment[extra] is not None:
            parts = [x01, *augment[extra]]
            mem_images = np.round(np.concatenate(parts) * 255).clip(0, 255).astype(np.uint8)
            mem_labels = np.tile(labels, len(parts))
        observer = NearestNeighbourObserver(
            n_components=n_components, class_neighbours=j, bandwidth_scale=0.15
        ).fit(mem_images, mem_labels)
        evidence, _ = observer.perceive(query)
        _report(
            f"knn/PCA {n_components} comp, {j} class nb{extra}",
            evidence[:n_ref],
            evidence[n_ref:].argmax(axis=1),
            data,
            time.perf_counter() - start,
        )


@dataclass
class CnnEvidence:
    """A crowd profile that takes its class evidence from a CNN and keeps its own kNN
    observer for atypicality and reference contrast (what ``SimulatedCrowd`` reads)."""

    network: object
    geometry: object

    @property
    def reference_contrast_(self) -> float:
        return self.geometry.reference_contrast_

    def perceive(self, images01: np.ndarray):
        _, atypicality = self.geometry.perceive(images01)
        return _cnn_probabilities(self.network, images01), atypicality


def _cnn(c1=32, c2=64, hidden=128):
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, c1, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 49, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def train_cnn(images: np.ndarray, labels: np.ndarray, seed: int, epochs: int = 8):
    """Adam, batches of 64, random rotations (+-10 deg) and shifts (+-2 px); one thread."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _cnn()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.from_numpy(images.astype(np.float32)[:, None] / 255.0)
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            b = order[i : i + 64]
            th = (torch.rand(len(b), generator=gen) - 0.5) * 2 * np.deg2rad(10)
            sh = (torch.rand(len(b), 2, generator=gen) - 0.5) * 2 * 2 / 14
            rows = [
                torch.stack([th.cos(), -th.sin(), sh[:, 0]], 1),
                torch.stack([th.sin(), th.cos(), sh[:, 1]], 1),
            ]
            grid = F.affine_grid(torch.stack(rows, 1), (len(b), 1, 28, 28), align_corners=False)
            xb = F.grid_sample(x[b], grid, align_corners=False)
            loss = F.cross_entropy(net(xb), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def _cnn_probabilities(net, images01: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        logits = net(torch.from_numpy(np.asarray(images01, np.float32)[:, None]))
        return torch.softmax(logits, 1).double().numpy()


def crowd_rows(data, net) -> None:
    from soft_label_audit.crowd import people_reference, perception, simulated, validity

    config = data["config"]
    images, labels = data["memory"]
    profiles = perception.observers_from_config(images, labels, config.perception, config.seed)
    crowd = simulated.SimulatedCrowd(config, [CnnEvidence(net, g) for g in profiles])
    ref = data["reference"]
    votes = crowd.annotate(ref["item_id"].to_numpy(), data["images"])
    comparison = people_reference.compare(
        people_reference.people_counts(ref), people_reference.crowd_counts(votes, ref)
    )
    people = validity.ValidityTargets.from_params(data["params"]["crowd_validity"]).people
    for row in validity.people_reference_rows(comparison, people, len(ref)):
        print(f"  {row['check']:28s} {row['value']:.3f}  {'holds' if row['holds'] else 'FAILS'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cnn", type=int, nargs="*", default=[], help="CNN seeds")
    parser.add_argument("--no-knn", action="store_true", help="skip the kNN variants")
    parser.add_argument("--crowd", action="store_true", help="people rows with each CNN")
    args = parser.parse_args()
    data = _data()
    if not args.no_knn:
        knn_variants(data)
    for seed in args.cnn:
        start = time.perf_counter()
        net = train_cnn(*data["memory"], seed=seed)
        _report(
            f"CNN 32/64/128, 8 epochs, seed {seed}",
            _cnn_probabilities(net, data["images"] / 255.0),
            _cnn_probabilities(net, data["check"][0] / 255.0).argmax(axis=1),
            data,
            time.perf_counter() - start,
        )
        if args.crowd:
            crowd_rows(data, net)
    return 0


if __name__ == "__main__":
    sys.exit(main())
