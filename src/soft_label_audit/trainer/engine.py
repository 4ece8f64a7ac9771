"""Soft-target training of several runs of the study CNN, with training dynamics.

A *run* is one (targets, seed) pair. All runs of one call share the images (one source), so
they share the number of training items and therefore, for a given seed, the batch order.

* Loss: soft-target cross-entropy, ``L = -(1/B) sum_i sum_k t_ik log softmax(z_i)_k`` (nats).
* Paired design: a run's initial weights come from :func:`model.init_generator` (seed only)
  and its batch order from :func:`batch_orders` (seed and item count only), so every label
  condition with the same seed starts from the same weights and sees the same batches.
* Training dynamics: the predicted distribution ``softmax(z_i)`` of every training item at
  every epoch, taken from the training forward pass of the batch that holds the item (so it
  costs no extra forward pass; it reflects the weights at that point of the epoch).
* Curves per epoch: ``train_loss`` (mean loss of the epoch's batches against the targets),
  ``train_acc`` (share of the epoch's forward predictions equal to the original label); at the
  end of the epoch, on the validation items, the same yardstick for every condition:
  ``val_loss`` (cross-entropy against the original label, -mean ln p[o]) and ``val_acc``
  (accuracy against the original label), ``val_loss_human_mode`` and ``val_acc_human_mode``
  (the same against the human mode; NaN without ``TrainData.val_modes``), and the run's own
  objective ``val_loss_own_target`` (against its validation targets); ``lr`` (learning rate
  at the epoch's last step).
* Best epoch: each run's *best epoch* is the epoch with the lowest ``val_loss`` (against the
  original label, the same yardstick for every condition; the earliest on a tie; the last epoch
  when there are no validation items). A copy of the weights is kept whenever ``val_loss``
  improves, and after training the test items and the pool images (``TrainData.pool_images``)
  are predicted with the weights of the best epoch (``*_best``) and with the final ones (once,
  when the best epoch is the last); so are the validation items (``val_logits``,
  ``val_logits_best``), on which a post-hoc temperature is fitted outside the trainer.
  The state dicts returned are the final weights (the model a run ends with, and the one its
  final-epoch predictions come from); ``best_epochs`` says which epoch the best-epoch
  predictions come from.

Two code paths give the same numbers (to float tolerance): the plain loop trains the runs one
after another (on a CPU, ``parallel_runs`` of them at a time, each in a thread of its own with
one intra-op thread, which keeps small convolutions efficient and immune to a busy neighbour
process); the vectorised path stacks the K runs' parameters and trains them together with
``torch.func.vmap`` over ``functional_call``, with the data, targets and dynamics kept on the
device. Because the runs are independent, the gradient of the summed loss with respect to the
stacked parameters is each run's own gradient, and Adam/SGD act elementwise, so one optimizer
over the stacked tensors performs K independent optimisations.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from soft_label_audit import params as p
from soft_label_audit.progress import progress_bar, progress_enabled
from soft_label_audit.trainer.model import N_CLASSES, ModelConfig, build_model, images_to_tensor

CURVE_NAMES = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_loss_human_mode",
    "val_acc_human_mode",
    "val_loss_own_target",
    "lr",
)
#: offset that separates the batch-order random stream from other uses of a seed
_ORDER_STREAM = 0x5EED


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")
VECTORISE = ("auto", "always", "never")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (from ``training`` parameters).

    ``schedule``: ``cosine`` (lr_t = lr * (1 + cos(pi * t / T)) / 2 over the T steps of
    training) or ``constant``. ``device``: ``auto`` (cuda when available), ``cpu`` or ``cuda``.
    ``vectorise``: ``auto`` (on cuda only), ``always`` or ``never``. ``num_threads``: CPU
    threads (None: every core). ``parallel_runs``: runs trained at once on a CPU, each in its own
    thread with one intra-op thread (``auto``: ``num_threads``; 1: one run after another using
    ``num_threads`` intra-op threads). ``deterministic``: torch's deterministic algorithms (CPU).
    """

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    momentum: float
    schedule: str
    device: str
    vectorise: str
    num_threads: int | None
    parallel_runs: int | str
    deterministic: bool
    progress: bool | str
    eval_batch_size: int

    @classmethod
    def from_params(cls, params: dict, path: str = "training") -> TrainConfig:
        """Read the ``training`` parameter block (``optimizer`` and ``schedule`` are sub-blocks);
        ``path`` names the block in error messages (``labels.teacher`` for the teacher).

        >>> from soft_label_audit.parameter_tree import base_block
        >>> TrainConfig.from_params({**base_block("training"), "epochs": 3, "batch_size": 0})
        Traceback (most recent call last):
        ...
        soft_label_audit.params.ParameterError: training.batch_size must be a positive integer, got 0
        """
        opt = p.block(f"{path}.optimizer", p.required(path, params, "optimizer"))
        sched = p.block(f"{path}.schedule", p.required(path, params, "schedule"))
        p.no_unknown(f"{path}.optimizer", opt, ("name", "lr", "weight_decay", "momentum"))
        p.no_unknown(f"{path}.schedule", sched, ("name",))
        get = lambda key: p.required(path, params, key)  # noqa: E731
        threads, parallel, progress = get("num_threads"), get("parallel_runs"), get("progress")
        name = p.required(f"{path}.optimizer", opt, "name")
        return cls(
            epochs=p.positive_int(f"{path}.epochs", get("epochs")),
            batch_size=p.positive_int(f"{path}.batch_size", get("batch_size")),
            optimizer=p.choice(f"{path}.optimizer.name", name, OPTIMIZERS),
            lr=p.number(
                f"{path}.optimizer.lr", p.required(f"{path}.optimizer", opt, "lr"), 0, low_open=True
            ),
            weight_decay=p.number(
                f"{path}.optimizer.weight_decay",
                p.required(f"{path}.optimizer", opt, "weight_decay"),
                0,
            ),
            momentum=p.number(
                f"{path}.optimizer.momentum",
                p.required(f"{path}.optimizer", opt, "momentum"),
                0,
                1,
            ),
            schedule=p.choice(
                f"{path}.schedule.name", p.required(f"{path}.schedule", sched, "name"), SCHEDULES
            ),
            device=p.text(f"{path}.device", get("device")),
            vectorise=p.choice(f"{path}.vectorise", get("vectorise"), VECTORISE),
            num_threads=None
            if threads == "auto"
            else p.positive_int(f"{path}.num_threads", threads),
            parallel_runs=parallel
            if parallel == "auto"
            else p.positive_int(f"{path}.parallel_runs", parallel),
            deterministic=p.boolean(f"{path}.deterministic", get("deterministic")),
            progress=progress if progress == "auto" else p.boolean(f"{path}.progress", progress),
            eval_batch_size=p.positive_int(f"{path}.eval_batch_size", get("eval_batch_size")),
        )


@dataclass
class TrainData:
    """Images (n, 28, 28) uint8 and original labels (n,) of the three splits; optionally the
    human mode of the validation items (for the ``*_human_mode`` curves) and unlabelled pool
    images (m, 28, 28) uint8, predicted after training like the test items."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    val_modes: np.ndarray | None = None
    pool_images: np.ndarray | None = None


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, float32."""
    z = logits - logits.max(-1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(-1, keepdims=True)).astype(np.float32)


@dataclass
class TrainResult:
    """Outputs of K runs. Curves are (K, E) arrays; ``dynamics`` is (K, E, n_train, 10) float32.

    Logits are (K, n, 10) float32: ``test_logits``, ``pool_logits`` and ``val_logits`` with
    the final weights, ``test_logits_best``, ``pool_logits_best`` and ``val_logits_best`` with
    those of each run's best epoch (``best_epochs``, (K,) 1-based; module doc). ``state_dicts``
    are the final weights. ``predict_seconds``: the wall time of the predictions after training
    (both epochs, test, pool and validation items), part of ``seconds``."""

    seeds: np.ndarray
    curves: dict[str, np.ndarray]
    test_logits: np.ndarray
    dynamics: np.ndarray | None
    state_dicts: list[dict[str, np.ndarray]]
    device: str
    vectorised: bool
    seconds: float
    sample_updates: int = field(default=0)
    best_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_logits_best: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 10), np.float32))
    pool_logits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 10), np.float32))
    pool_logits_best: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 10), np.float32))
    predict_seconds: float = 0.0
    val_logits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 10), np.float32))
    val_logits_best: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 10), np.float32))

    @property
    def test_probs(self) -> np.ndarray:
        return softmax(self.test_logits)

    @property
    def test_probs_best(self) -> np.ndarray:
        return softmax(self.test_logits_best)

    @property
    def pool_probs(self) -> np.ndarray:
        return softmax(self.pool_logits)

    @property
    def pool_probs_best(self) -> np.ndarray:
        return softmax(self.pool_logits_best)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batch_orders(seed: int, n_items: int, epochs: int) -> np.ndarray:
    """(epochs, n_items) item orders, one permutation per epoch, from the seed alone."""
    rng = np.random.default_rng([int(seed), _ORDER_STREAM])
    return (
        np.stack([rng.permutation(n_items) for _ in range(epochs)])
        if epochs
        else np.zeros((0, n_items), np.int64)
    )


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch (second-to-last axis) of -sum_k t_k log softmax(z)_k, per leading index."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(-1).mean(-1)


def _make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` is one of :data:`OPTIMIZERS` (:meth:`TrainConfig.from_params`)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    make = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
    return make(params, lr=config.lr, weight_decay=config.weight_decay)


def _make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """``config.schedule`` is one of :data:`SCHEDULES`; ``total_steps`` >= 1 (epochs >= 1 and at
    least one training item) and the scheduler is stepped exactly ``total_steps`` times, so the
    cosine factor sees steps 0..total_steps only."""

    def cosine(step):
        return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

    def constant(step):
        return 1.0

    factor = {"cosine": cosine, "constant": constant}[config.schedule]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextlib.contextmanager
def torch_settings(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Fix CPU threads and deterministic algorithms for the call; restore them afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = config.num_threads or os.cpu_count() or 1  # >= 1: num_threads is None or positive
    torch.set_num_threads(min(threads, os.cpu_count() or threads))
    if config.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _check_inputs(
    data: TrainData, train_targets: np.ndarray, val_targets: np.ndarray, seeds
) -> None:
    n, m = len(data.train_images), len(data.val_images)
    if train_targets.ndim != 3 or train_targets.shape[1:] != (n, N_CLASSES):
        raise ValueError(f"train_targets must be (K, {n}, {N_CLASSES}), got {train_targets.shape}")
    if val_targets.shape != (train_targets.shape[0], m, N_CLASSES):
        raise ValueError(
            f"val_targets must be ({train_targets.shape[0]}, {m}, {N_CLASSES}), got {val_targets.shape}"
        )
    if len(seeds) != train_targets.shape[0]:
        raise ValueError(f"{len(seeds)} seeds for {train_targets.shape[0]} runs")
    if n == 0:
        raise ValueError("no training items")


def train_runs(
    data: TrainData,
    train_targets: np.ndarray,
    val_targets: np.ndarray,
    seeds,
    model_config: ModelConfig,
    config: TrainConfig,
    record_dynamics: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train K runs (``train_targets[k]``, ``seeds[k]``) and return curves, dynamics and the test
    and pool logits at each run's best epoch and at the final epoch."""
    train_targets = np.asarray(train_targets, np.float32)
    val_targets = np.asarray(val_targets, np.float32)
    seeds = np.asarray(seeds, np.int64)
    _check_inputs(data, train_targets, val_targets, seeds)
    device = resolve_device(config.device)
    # config.vectorise is one of VECTORISE (TrainConfig.from_params)
    vectorise = {"auto": device.type == "cuda", "always": True, "never": False}[config.vectorise]
    start = time.perf_counter()
    with torch_settings(config, device):
        job = _Job(
            tensors=_Tensors(data, train_targets, val_targets, device),
            seeds=seeds,
            model_config=model_config,
            config=config,
            device=device,
            record=record_dynamics,
            desc=desc,
            show=progress_enabled(config.progress),
        )
        out = _train_vectorised(job=job) if vectorise else _train_plain(job=job)
    return TrainResult(
        seeds=seeds,
        curves=out.curves,
        test_logits=out.test_logits,
        dynamics=out.dynamics,
        state_dicts=out.state_dicts,
        device=str(device),
        vectorised=vectorise,
        seconds=time.perf_counter() - start,
        sample_updates=int(len(seeds) * config.epochs * len(data.train_images)),
        best_epochs=out.best_epochs,
        test_logits_best=out.test_logits_best,
        pool_logits=out.pool_logits,
        pool_logits_best=out.pool_logits_best,
        predict_seconds=out.predict_seconds,
        val_logits=out.val_logits,
        val_logits_best=out.val_logits_best,
    )


class _Tensors:
    """The data of a call, moved to the device once."""

    def __init__(self, data: TrainData, train_targets, val_targets, device):
        self.x = images_to_tensor(data.train_images, device)
        self.y = torch.as_tensor(np.array(data.train_labels, np.int64), device=device)
        self.x_val = images_to_tensor(data.val_images, device)
        self.y_val = torch.as_tensor(np.array(data.val_labels, np.int64), device=device)
        self.m_val = (
            None
            if data.val_modes is None
            else torch.as_tensor(np.array(data.val_modes, np.int64), device=device)
        )
        self.x_test = images_to_tensor(data.test_images, device)
        pool = data.pool_images if data.pool_images is not None else data.test_images[:0]
        self.x_pool = images_to_tensor(pool, device)
        self.t = torch.as_tensor(train_targets, device=device)
        self.t_val = torch.as_tensor(val_targets, device=device)


@dataclass(frozen=True)
class _Job:
    """What every run of one :func:`train_runs` call shares."""

    tensors: _Tensors
    seeds: np.ndarray
    model_config: ModelConfig
    config: TrainConfig
    device: torch.device
    record: bool
    desc: str
    show: bool


@dataclass(frozen=True)
class _Predictions:
    """Logits (..., n, 10) of the test items, the pool and the validation items, at the best
    and the final epoch."""

    test: np.ndarray
    test_best: np.ndarray
    pool: np.ndarray
    pool_best: np.ndarray
    seconds: float
    val: np.ndarray
    val_best: np.ndarray


@dataclass(frozen=True)
class _RunOutput:
    """One run: (E,) curves, its predictions, (E, n, 10) dynamics (None unless recorded), the
    final weights and the best epoch (1-based)."""

    curves: dict[str, np.ndarray]
    predictions: _Predictions
    dynamics: np.ndarray | None
    state_dict: dict[str, np.ndarray]
    best_epoch: int


@dataclass(frozen=True)
class _RunsOutput:
    """K runs: (K, E) curves, (K, n, 10) float32 logits (test, pool and validation items,
    final and best epoch), (K, E, n, 10) dynamics (None unless recorded), one state dict per
    run, (K,) best epochs."""

    curves: dict[str, np.ndarray]
    test_logits: np.ndarray
    dynamics: np.ndarray | None
    state_dicts: list[dict[str, np.ndarray]]
    best_epochs: np.ndarray
    test_logits_best: np.ndarray
    pool_logits: np.ndarray
    pool_logits_best: np.ndarray
    predict_seconds: float
    val_logits: np.ndarray
    val_logits_best: np.ndarray

    @classmethod
    def stack(cls, runs: list[_RunOutput], record: bool) -> _RunsOutput:
        def logits(field_name: str) -> np.ndarray:
            return np.stack([getattr(r.predictions, field_name) for r in runs]).astype(np.float32)

        return cls(
            curves={name: np.stack([r.curves[name] for r in runs]) for name in CURVE_NAMES},
            test_logits=logits("test"),
            dynamics=np.stack([r.dynamics for r in runs]) if record else None,
            state_dicts=[r.state_dict for r in runs],
            best_epochs=np.array([r.best_epoch for r in runs], np.int64),
            test_logits_best=logits("test_best"),
            pool_logits=logits("pool"),
            pool_logits_best=logits("pool_best"),
            predict_seconds=float(sum(r.predictions.seconds for r in runs)),
            val_logits=logits("val"),
            val_logits_best=logits("val_best"),
        )


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _train_plain(*, job: _Job) -> _RunsOutput:
    """The runs one after another, or, on a CPU with ``workers`` > 1, several at a time in threads
    with one intra-op thread each (the results are the same either way: runs share nothing)."""
    k_runs, epochs = len(job.seeds), job.config.epochs
    workers = max(1, min(_cpu_workers(job.config, job.device), k_runs))
    overall = progress_bar(k_runs * epochs, f"{job.desc} (all runs)", job.show, position=0)

    def run(k: int) -> _RunOutput:
        if workers > 1:
            torch.set_num_threads(1)  # per-thread setting: each worker keeps to one core
        return _train_one(job=job, k=k, overall=overall, position=1 + k % workers)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="train-run") as pool:
            runs = list(pool.map(run, range(k_runs)))
    else:
        runs = [run(k) for k in range(k_runs)]
    overall.close()
    return _RunsOutput.stack(runs, record=job.record)


def _cpu_workers(config: TrainConfig, device: torch.device) -> int:
    """Runs trained at once on a CPU. ``parallel_runs: auto`` uses one per CPU thread: small convs
    scale poorly across intra-op threads, and those stall badly when another process holds a core."""
    if device.type != "cpu":
        return 1
    if config.parallel_runs == "auto":
        return config.num_threads or os.cpu_count() or 1
    return int(config.parallel_runs)


def _train_one(*, job: _Job, k: int, overall, position: int) -> _RunOutput:
    """Run ``k`` of ``job`` (seed ``job.seeds[k]``); ``overall`` counts its epochs, its own bar
    sits at ``position``."""
    tensors, config, device, record = job.tensors, job.config, job.device, job.record
    seed = int(job.seeds[k])
    n, epochs = len(tensors.x), config.epochs
    curves = {name: np.full(epochs, np.nan) for name in CURVE_NAMES}
    batches = _chunks(n, config.batch_size)
    model = build_model(job.model_config, seed).to(device)
    optimizer = _make_optimizer(model.parameters(), config)
    schedule = _make_schedule(optimizer, config, epochs * len(batches))
    orders = torch.as_tensor(batch_orders(seed, n, epochs), device=device)
    targets = tensors.t[k]
    dyn = torch.empty((epochs, n, N_CLASSES), device=device) if record else None
    # the best epoch so far (0-based) and a copy of its weights (None: the final weights)
    best_loss, best_epoch, best_state = math.inf, epochs - 1, None
    run_bar = progress_bar(
        epochs, f"{job.desc} seed {seed}", job.show, position=position, leave=False
    )
    for epoch in range(epochs):
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for chunk in batches:
            idx = orders[epoch, chunk]
            logits = model(tensors.x[idx])
            logp = torch.log_softmax(logits, dim=-1)
            loss = -(targets[idx] * logp).sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                if record:
                    dyn[epoch, idx] = logp.exp()
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(-1) == tensors.y[idx]).sum()
        curves["train_loss"][epoch] = float(loss_sum) / n
        curves["train_acc"][epoch] = float(correct) / n
        curves["lr"][epoch] = optimizer.param_groups[0]["lr"]
        if len(tensors.x_val):
            val_logits = _predict_plain(model, tensors.x_val, config.eval_batch_size)
            val = _val_curves(val_logits, tensors.t_val[k], tensors.y_val, tensors.m_val)
            for name, value in val.items():
                curves[name][epoch] = float(value)
            if curves["val_loss"][epoch] < best_loss:
                best_loss, best_epoch = curves["val_loss"][epoch], epoch
                best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
        run_bar.update()
        run_bar.set_postfix(
            loss=f"{curves['train_loss'][epoch]:.3f}", val_acc=f"{curves['val_acc'][epoch]:.3f}"
        )
        overall.update()
    run_bar.close()
    state = {name: p.detach().cpu().numpy().copy() for name, p in model.state_dict().items()}

    def best_logits(x: torch.Tensor, final: np.ndarray) -> np.ndarray:
        model.load_state_dict(best_state)  # after the final predictions
        return _predict_plain(model, x, config.eval_batch_size).cpu().numpy()

    predictions = _predict_epochs(
        lambda x: _predict_plain(model, x, config.eval_batch_size),
        tensors,
        best_logits if best_state is not None and best_epoch < epochs - 1 else None,
    )
    return _RunOutput(
        curves=curves,
        predictions=predictions,
        dynamics=dyn.cpu().numpy() if record else None,
        state_dict=state,
        best_epoch=best_epoch + 1,
    )


def _predict_epochs(predict, tensors: _Tensors, best_logits=None) -> _Predictions:
    """The test items, the pool and the validation items predicted by ``predict`` with the
    final weights, then by ``best_logits(x, final_logits)`` with those of the best epoch.
    ``best_logits`` is None when every run's best epoch is its last: its best-epoch logits are
    then the final ones (copied, not computed twice; a run still improving at its end costs one
    prediction). The validation items come after the test items and the pool, each set predicted
    on its own, so adding them changed no test or pool prediction."""
    start = time.perf_counter()
    sets = (tensors.x_test, tensors.x_pool, tensors.x_val)
    final = [predict(x).cpu().numpy() for x in sets]
    if best_logits is None:
        best = [logits.copy() for logits in final]
    else:
        best = [best_logits(x, logits) for x, logits in zip(sets, final, strict=True)]
    (test, pool, val), (test_best, pool_best, val_best) = final, best
    return _Predictions(
        test, test_best, pool, pool_best, time.perf_counter() - start, val, val_best
    )


@torch.no_grad()
def _val_curves(
    logits: torch.Tensor,
    own_targets: torch.Tensor,
    original: torch.Tensor,
    modes: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Validation curves of one epoch (module doc); ``logits`` (..., m, 10), labels (m,)."""
    logp = torch.log_softmax(logits, dim=-1)
    pred = logits.argmax(-1)

    def against(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        picked = logp.gather(-1, labels.expand(pred.shape).unsqueeze(-1)).squeeze(-1)
        return -picked.mean(-1), (pred == labels).float().mean(-1)

    out = {"val_loss_own_target": soft_cross_entropy(logits, own_targets)}
    out["val_loss"], out["val_acc"] = against(original)
    if modes is None:
        nan = torch.full_like(out["val_loss"], float("nan"))
        out["val_loss_human_mode"], out["val_acc_human_mode"] = nan, nan
    else:
        out["val_loss_human_mode"], out["val_acc_human_mode"] = against(modes)
    return out


@torch.no_grad()
def _predict_plain(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    if len(x) == 0:
        return torch.zeros((0, N_CLASSES), device=x.device)
    return torch.cat([model(x[chunk]) for chunk in _chunks(len(x), batch_size)])


def _train_vectorised(*, job: _Job) -> _RunsOutput:
    """The K runs of ``job`` at once, their parameters stacked (module doc)."""
    tensors, config, device, record, seeds = (
        job.tensors,
        job.config,
        job.device,
        job.record,
        job.seeds,
    )
    n, epochs, k_runs = len(tensors.x), config.epochs, len(seeds)
    models = [build_model(job.model_config, int(seed)) for seed in seeds]
    stacked, _ = stack_module_state(models)
    params = {name: p.detach().to(device).requires_grad_(True) for name, p in stacked.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")

    def forward_one(p, x):
        return functional_call(skeleton, p, (x,))

    forward_runs = vmap(forward_one)  # params (K, ...), x (K, B, 1, 28, 28)
    forward_shared = vmap(forward_one, in_dims=(0, None))  # the same x for every run

    batches = _chunks(n, config.batch_size)
    optimizer = _make_optimizer(list(params.values()), config)
    schedule = _make_schedule(optimizer, config, epochs * len(batches))
    orders = torch.as_tensor(
        np.stack([batch_orders(int(s), n, epochs) for s in seeds]), device=device
    )
    run_index = torch.arange(k_runs, device=device)[:, None]
    dyn = torch.empty((k_runs, epochs, n, N_CLASSES), device=device) if record else None
    history = {
        name: torch.full((k_runs, epochs), float("nan"), device=device) for name in CURVE_NAMES
    }
    # per run: the best epoch so far (0-based) and a copy of its weights (module doc)
    best_loss = torch.full((k_runs,), math.inf, device=device)
    best_epoch = torch.full((k_runs,), epochs - 1, dtype=torch.long, device=device)
    best = {name: p.detach().clone() for name, p in params.items()}
    bar = progress_bar(epochs, f"{job.desc} ({k_runs} runs vectorised)", job.show, position=0)
    for epoch in range(epochs):
        loss_sum = torch.zeros(k_runs, device=device)
        correct = torch.zeros(k_runs, device=device, dtype=torch.long)
        for chunk in batches:
            idx = orders[:, epoch, chunk]  # (K, b)
            logits = forward_runs(params, tensors.x[idx])  # (K, b, 10)
            logp = torch.log_softmax(logits, dim=-1)
            losses = -(tensors.t[run_index, idx] * logp).sum(-1).mean(-1)  # (K,)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                if record:
                    dyn[run_index, epoch, idx] = logp.exp()
                loss_sum += losses.detach() * idx.shape[1]
                correct += (logits.argmax(-1) == tensors.y[idx]).sum(-1)
        with torch.no_grad():
            history["train_loss"][:, epoch] = loss_sum / n
            history["train_acc"][:, epoch] = correct.float() / n
            history["lr"][:, epoch] = optimizer.param_groups[0]["lr"]
            if len(tensors.x_val):
                val_logits = _predict_vectorised(
                    forward_shared, params, tensors.x_val, config.eval_batch_size
                )
                val = _val_curves(val_logits, tensors.t_val, tensors.y_val, tensors.m_val)
                for name, value in val.items():
                    history[name][:, epoch] = value
                # the plain loop compares the float64 of the same float32 value
                improved = history["val_loss"][:, epoch].double() < best_loss.double()
                best_loss = torch.where(improved, history["val_loss"][:, epoch], best_loss)
                best_epoch = torch.where(improved, epoch, best_epoch)
                for name, p in params.items():
                    best[name][improved] = p.detach()[improved]
        bar.update()
    bar.close()
    state_dicts = [
        {name: p[k].detach().cpu().numpy().copy() for name, p in params.items()}
        for k in range(k_runs)
    ]
    # the runs whose best epoch is not their last (a run whose val_loss never improved, or
    # without validation items, keeps epochs - 1: its final weights)
    earlier = torch.nonzero(best_epoch < epochs - 1).flatten()
    subset = {name: b[earlier] for name, b in best.items()}

    def best_logits(x: torch.Tensor, final: np.ndarray) -> np.ndarray:
        out = final.copy()
        logits = _predict_vectorised(forward_shared, subset, x, config.eval_batch_size)
        out[earlier.cpu().numpy()] = logits.cpu().numpy()
        return out

    predictions = _predict_epochs(
        lambda x: _predict_vectorised(forward_shared, params, x, config.eval_batch_size),
        tensors,
        best_logits if len(earlier) else None,
    )
    return _RunsOutput(
        curves={name: h.cpu().double().numpy() for name, h in history.items()},
        test_logits=predictions.test.astype(np.float32),
        dynamics=dyn.cpu().numpy() if record else None,
        state_dicts=state_dicts,
        best_epochs=best_epoch.cpu().numpy().astype(np.int64) + 1,
        test_logits_best=predictions.test_best.astype(np.float32),
        pool_logits=predictions.pool.astype(np.float32),
        pool_logits_best=predictions.pool_best.astype(np.float32),
        predict_seconds=predictions.seconds,
        val_logits=predictions.val.astype(np.float32),
        val_logits_best=predictions.val_best.astype(np.float32),
    )


@torch.no_grad()
def _predict_vectorised(forward_shared, params, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    k_runs = next(iter(params.values())).shape[0]
    if len(x) == 0:
        return torch.zeros((k_runs, 0, N_CLASSES), device=x.device)
    detached = {name: p.detach() for name, p in params.items()}
    return torch.cat(
        [forward_shared(detached, x[chunk]) for chunk in _chunks(len(x), batch_size)], dim=1
    )


def predict_logits(
    state_dict: dict[str, np.ndarray],
    model_config: ModelConfig,
    images: np.ndarray,
    device: str = "auto",
    batch_size: int = 2048,
) -> np.ndarray:
    """(n, 10) logits of a trained model (a :class:`TrainResult` state dict) on (n, 28, 28) images."""
    dev = resolve_device(device)
    model = build_model(model_config, 0)
    model.load_state_dict({name: torch.as_tensor(v) for name, v in state_dict.items()})
    model.to(dev).eval()
    return _predict_plain(model, images_to_tensor(images, dev), batch_size).cpu().numpy()
