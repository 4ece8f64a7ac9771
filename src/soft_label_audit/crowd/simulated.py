"""A simulated crowd: a pool of noisy perceptual observers who vote on every study item.

Each annotator ``a`` has traits drawn once from the ranges of :class:`CrowdConfig`:

* viewing conditions: a constant offset ``shift_a`` (px) plus per-look jitter
  ``N(0, jitter_a)`` (px), a rotation ``N(0, rotation_a)`` (degrees), a blur ``sigma_a`` (px);
* a perception profile: annotators differ in how they see, not only in viewing noise. Each
  annotator uses one of ``n_profiles`` observers (:func:`.perception.observer_profiles`),
  each with its own share of the remembered digits, its own number of principal components
  and of neighbours, so that their errors are less correlated than copies of one observer's;
* a decision ``sharpness_a`` (beta): the choice is drawn from ``q ∝ p ** beta_eff`` where
  ``p`` is the observer's class evidence (:mod:`.perception`) and
  ``beta_eff = beta * min(1, c / c_ref) ** gamma`` lowers the sharpness a little on strokes
  fainter than usual (``c`` the item's stroke contrast, ``c_ref`` the memory's median,
  ``gamma`` = ``contrast_sensitivity``, small: contrast must not be what makes people unsure);
* a ``lapse_a`` rate: with that probability the vote is a uniformly random digit, sure;
* a ``none_a`` threshold: when the top decision weight ``max q < none_a`` or the image is
  atypical (atypicality ``> atypical_a``) the annotator answers "none" (can't tell);
* an ``unsure_a`` threshold on the evidence margin: a digit vote is flagged unsure when the two
  most likely digits are close, ``q_(1) - q_(2) < unsure_a``;
* a speed ``speed_a`` (s): response time ``speed_a * exp(N(0, 0.3)) * (1 + 2 (1 - max q))``
  (+1 s when unsure).

Careless annotators (a ``careless_share`` of the pool) have a high lapse rate, decide less
sharply, answer fast, and never say "none" or "unsure".

Every item gets between ``votes_min`` and ``votes_max`` votes from distinct annotators, drawn
so that every annotator's load stays close to even. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from soft_label_audit import params as p
from soft_label_audit.columns import NONE_CHOICE
from soft_label_audit.crowd import perception
from soft_label_audit.progress import progress_bar, progress_enabled

Range = tuple[float, float]


@dataclass(frozen=True)
class CrowdConfig:
    seed: int
    n_annotators: int
    votes_min: int
    votes_max: int
    careless_share: float
    n_profiles: int
    contrast_sensitivity: float
    shift_px: Range
    jitter_px: Range
    rotation_deg: Range
    blur_px: Range
    sharpness: Range
    lapse: Range
    none_threshold: Range
    atypical_threshold: Range
    unsure_threshold: Range
    speed_s: Range
    careless_lapse: Range
    careless_sharpness: Range
    careless_speed_s: Range

    perception: perception.PerceptionConfig

    @classmethod
    def from_params(cls, params: Any, path: str = "simulated_crowd") -> CrowdConfig:
        """Build from the ``simulated_crowd`` block (nested ``votes_per_item``, ``perception``,
        ``traits`` and ``careless``), every value checked (:mod:`soft_label_audit.params`).

        >>> from soft_label_audit.parameter_tree import base_block
        >>> CrowdConfig.from_params({**base_block("simulated_crowd"), "n_annotators": 0})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: simulated_crowd.n_annotators must be a positive integer, got 0
        """
        params = p.block(path, params)
        p.no_unknown(path, params, TOP_KEYS)
        get = lambda key: p.required(path, params, key)  # noqa: E731
        votes = p.block(f"{path}.votes_per_item", get("votes_per_item"))
        p.no_unknown(f"{path}.votes_per_item", votes, ("min", "max"))
        seen = perception.PerceptionConfig.from_params(get("perception"), f"{path}.perception")
        kwargs: dict[str, Any] = {
            "seed": p.non_negative_int(f"{path}.seed", get("seed")),
            "n_annotators": p.positive_int(f"{path}.n_annotators", get("n_annotators")),
            "votes_min": p.positive_int(
                f"{path}.votes_per_item.min", p.required(f"{path}.votes_per_item", votes, "min")
            ),
            "votes_max": p.positive_int(
                f"{path}.votes_per_item.max", p.required(f"{path}.votes_per_item", votes, "max")
            ),
            "contrast_sensitivity": p.number(
                f"{path}.contrast_sensitivity",
                get("contrast_sensitivity"),
                0,
            ),
            "n_profiles": seen.n_profiles,
            "perception": seen,
        }
        if kwargs["votes_max"] < kwargs["votes_min"]:
            raise p.fail(
                f"{path}.votes_per_item.max",
                f"an integer >= votes_per_item.min ({kwargs['votes_min']})",
                kwargs["votes_max"],
            )
        traits = p.block(f"{path}.traits", get("traits"))
        p.no_unknown(f"{path}.traits", traits, TRAIT_KEYS)
        for name in TRAIT_KEYS:
            kwargs[name] = p.increasing_range(
                f"{path}.traits.{name}", p.required(f"{path}.traits", traits, name), 0.0
            )
        careless = p.block(f"{path}.careless", get("careless"))
        p.no_unknown(f"{path}.careless", careless, ("share", "lapse", "sharpness", "speed_s"))
        kwargs["careless_share"] = p.probability(
            f"{path}.careless.share", p.required(f"{path}.careless", careless, "share")
        )
        for name in ("lapse", "sharpness", "speed_s"):
            kwargs[f"careless_{name}"] = p.increasing_range(
                f"{path}.careless.{name}", p.required(f"{path}.careless", careless, name), 0.0
            )
        for key, where in (("lapse", "traits.lapse"), ("careless_lapse", "careless.lapse")):
            if key in kwargs and kwargs[key][1] > 1:
                raise p.fail(f"{path}.{where}", "a range within [0, 1]", list(kwargs[key]))
        return cls(**kwargs)


TOP_KEYS = (
    "seed",
    "n_annotators",
    "votes_per_item",
    "contrast_sensitivity",
    "perception",
    "traits",
    "careless",
)
TRAIT_KEYS = (
    "shift_px",
    "jitter_px",
    "rotation_deg",
    "blur_px",
    "sharpness",
    "lapse",
    "none_threshold",
    "atypical_threshold",
    "unsure_threshold",
    "speed_s",
)


def draw_annotators(config: CrowdConfig, rng: np.random.Generator) -> pd.DataFrame:
    """One row per annotator with its traits (ids ``sim_000``, ``sim_001`` ...)."""
    n = config.n_annotators
    if n < config.votes_max:
        raise ValueError(f"{n} annotators cannot give {config.votes_max} distinct votes per item")
    u = lambda r: rng.uniform(r[0], r[1], size=n)  # noqa: E731
    careless = np.zeros(n, dtype=bool)
    n_careless = int(round(config.careless_share * n))
    careless[rng.choice(n, size=n_careless, replace=False)] = True
    angle = rng.uniform(0, 2 * np.pi, size=n)
    shift = u(config.shift_px)
    table = pd.DataFrame(
        {
            "annotator_id": [f"sim_{i:03d}" for i in range(n)],
            "profile": np.arange(n) % max(1, config.n_profiles),
            "careless": careless,
            "shift_row_px": shift * np.sin(angle),
            "shift_col_px": shift * np.cos(angle),
            "jitter_px": u(config.jitter_px),
            "rotation_deg": u(config.rotation_deg),
            "blur_px": u(config.blur_px),
            "sharpness": np.where(careless, u(config.careless_sharpness), u(config.sharpness)),
            "lapse": np.where(careless, u(config.careless_lapse), u(config.lapse)),
            "none_threshold": np.where(careless, 0.0, u(config.none_threshold)),
            "atypical_threshold": np.where(careless, np.inf, u(config.atypical_threshold)),
            "unsure_threshold": np.where(careless, 0.0, u(config.unsure_threshold)),
            "speed_s": np.where(careless, u(config.careless_speed_s), u(config.speed_s)),
        }
    )
    return table


def assign_annotators(
    n_items: int, n_annotators: int, votes_min: int, votes_max: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(item index, annotator index) per vote; distinct annotators per item, loads near even.

    Each item draws its vote count uniformly in ``[votes_min, votes_max]``, then takes the
    annotators with the fewest votes so far (ties broken at random).
    """
    counts = rng.integers(votes_min, votes_max + 1, size=n_items)
    load = np.zeros(n_annotators)
    items, annotators = [], []
    for i in rng.permutation(n_items):
        key = load + rng.random(n_annotators)
        chosen = np.argpartition(key, counts[i] - 1)[: counts[i]]
        load[chosen] += 1
        items.append(np.full(counts[i], i))
        annotators.append(chosen)
    if not items:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(items).astype(np.int64), np.concatenate(annotators).astype(np.int64)


@dataclass
class SimulatedCrowd:
    """Annotates images with a pool of observers; ``annotators_`` holds the drawn traits.

    ``observer`` is one perception model or a list of profiles; annotator ``j`` sees with
    profile ``j % len(profiles)``.
    """

    config: CrowdConfig
    observer: perception.NearestNeighbourObserver | list[perception.NearestNeighbourObserver]
    annotators_: pd.DataFrame = field(init=False)

    @property
    def profiles(self) -> list[perception.NearestNeighbourObserver]:
        return list(self.observer) if isinstance(self.observer, (list, tuple)) else [self.observer]

    def annotate(self, item_ids: np.ndarray, images: np.ndarray) -> pd.DataFrame:
        """Long vote table: item_id, annotator_id, choice ("0".."9"/"none"), unsure, response_time."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        self.annotators_ = draw_annotators(cfg, rng)
        traits = self.annotators_
        item_idx, ann_idx = assign_annotators(
            len(item_ids), cfg.n_annotators, cfg.votes_min, cfg.votes_max, rng
        )
        n = len(item_idx)
        x = np.asarray(images, dtype=np.float64)[item_idx] / 255.0

        # viewing conditions of each look: rotation about the centre, constant shift + jitter
        theta = np.deg2rad(rng.normal(0.0, 1.0, n) * traits["rotation_deg"].to_numpy()[ann_idx])
        cos, sin = np.cos(theta), np.sin(theta)
        a = np.stack([np.stack([cos, -sin], 1), np.stack([sin, cos], 1)], 1)
        shift = (
            np.stack(
                [
                    traits["shift_row_px"].to_numpy()[ann_idx],
                    traits["shift_col_px"].to_numpy()[ann_idx],
                ],
                1,
            )
            + rng.normal(0.0, 1.0, (n, 2)) * traits["jitter_px"].to_numpy()[ann_idx, None]
        )
        centre = np.broadcast_to(np.array([13.5, 13.5]), (n, 2))
        offset = centre - np.einsum("nij,nj->ni", a, centre) - shift
        viewed = perception.warp(x, a, offset)
        blur = traits["blur_px"].to_numpy()
        bar = progress_bar(cfg.n_annotators, "simulated annotators", progress_enabled())
        for j in range(cfg.n_annotators):
            mask = ann_idx == j
            viewed[mask] = perception.blur(viewed[mask], float(blur[j]))
            bar.update()
        bar.close()
        profiles = self.profiles
        profile = ann_idx % len(profiles)
        evidence = np.empty((n, 10))
        atypicality = np.empty(n)
        for j, observer in enumerate(profiles):
            mask = profile == j
            evidence[mask], atypicality[mask] = observer.perceive(viewed[mask])

        # decisions
        contrast = perception.stroke_contrast(np.asarray(images, dtype=np.float64) / 255.0)[
            item_idx
        ]
        reference = np.array([o.reference_contrast_ for o in profiles])[profile]
        clarity = np.minimum(1.0, contrast / reference) ** cfg.contrast_sensitivity
        beta = (traits["sharpness"].to_numpy()[ann_idx] * clarity)[:, None]
        log_q = beta * np.log(np.maximum(evidence, 1e-12))
        q = np.exp(log_q - log_q.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        choice = (rng.random((n, 1)) > np.cumsum(q, axis=1)).sum(axis=1).clip(0, 9)
        top2 = -np.sort(-q, axis=1)[:, :2]
        top, margin = top2[:, 0], top2[:, 0] - top2[:, 1]
        lapse = rng.random(n) < traits["lapse"].to_numpy()[ann_idx]
        random_digit = rng.integers(0, 10, size=n)
        is_none = (~lapse) & (
            (top < traits["none_threshold"].to_numpy()[ann_idx])
            | (atypicality > traits["atypical_threshold"].to_numpy()[ann_idx])
        )
        unsure = (~lapse) & (~is_none) & (margin < traits["unsure_threshold"].to_numpy()[ann_idx])
        digit = np.where(lapse, random_digit, choice)
        choices = np.where(is_none, NONE_CHOICE, digit.astype(str))
        speed = traits["speed_s"].to_numpy()[ann_idx]
        response_time = (
            speed * np.exp(rng.normal(0.0, 0.3, n)) * (1.0 + 2.0 * (1.0 - top)) + unsure * 1.0
        )

        votes = pd.DataFrame(
            {
                "item_id": np.asarray(item_ids, dtype=np.int64)[item_idx],
                "annotator_id": traits["annotator_id"].to_numpy()[ann_idx].astype(str),
                "choice": choices.astype(str),
                "unsure": unsure.astype(bool),
                "response_time": np.round(response_time, 3),
            }
        )
        votes["annotator_id"] = votes["annotator_id"].astype(str)
        votes["choice"] = votes["choice"].astype(str)
        return votes.sort_values(["item_id", "annotator_id"], kind="stable").reset_index(drop=True)
