"""Data-parallel training on Ray Train: ``specforge train SPEC --backend ray --workers N [--address HOST:PORT]``.

The driver (this process) makes or resumes the run directory as a single-process run would, then
Ray Train's ``TorchTrainer`` starts N workers, joined by DistributedDataParallel (gloo on CPUs,
NCCL on GPUs). Every worker runs the training loop of specforge.training.loop on the run's stored
spec: the same batches in the same order (the shuffle generator is the spec's), each worker the
rows of every batch that are its shard; DDP averages the gradients so that a step is the step of
the whole batch, and the loss and outputs are gathered so that every worker's metrics, callbacks
and early stopping see the whole batch. Worker 0 writes the run directory (checkpoint, manifest,
best.npz) and reports each epoch's checkpoint through Ray, which keeps it under ``RUN/ray-K/``; its
progress travels to the driver through a Ray queue and is shown by the driver's own progress (and
TensorBoard log). When a worker dies, Ray Train (``FailureConfig``) starts the workers again and
they continue from the last reported checkpoint. The driver finishes the run (weights, history,
test metrics) as a single-process run does.

The run directory must be on storage every worker sees: a local Ray, or a shared file system.
"""

from __future__ import annotations

import functools
import queue
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from specforge.base.errors import RunError
from specforge.base.raycluster import connect
from specforge.graph.model import Batch, Model
from specforge.options import callbacks as callback_kinds
from specforge.options.losses import Loss
from specforge.options.optimizers import Optimizer
from specforge.runs import directory as runs
from specforge.spec import Spec
from specforge.training import loop
from specforge.training.progress import Progress, Silent
from specforge.training.torch.backend import TorchSteps

#: Times Ray Train starts the workers again after a failure before the run fails.
MAX_FAILURES = 3
#: Seconds the driver waits for a progress event before looking at the training thread again.
POLL_SECONDS = 0.2
#: Progress events worker 0 may be ahead of the driver's display: a put waits beyond it, so that what the
#: driver shows (and an interruption's epoch and batch) is at most this many batches behind.
QUEUED_EVENTS = 8


class ShardSteps(TorchSteps):
    """A worker's steps: its shard of each batch through DistributedDataParallel, the loss and outputs of
    the whole batch gathered from every worker."""

    def __init__(
        self,
        model: Model,
        spec: Spec,
        loss: Loss | list[Loss],
        optimizer: Optimizer,
        dropout_rng: np.random.Generator,
        device: torch.device,
        request: str,
        rank: int,
        world: int,
    ):
        from torch.nn.parallel import DistributedDataParallel

        self.rank, self.world = rank, world
        super().__init__(
            model, spec, loss, optimizer, dropout_rng, device, request, seed_offset=rank, wrap=DistributedDataParallel
        )

    def step(self, x: Batch, labels: Batch, targets: Batch, loss: Loss | list[Loss]) -> tuple[Any, Any]:
        size = len(x[0] if isinstance(x, list) else x)
        rows = np.array_split(np.arange(size), self.world)[self.rank]
        # a worker without rows (a last batch smaller than the workers) steps on one row, weighted 0
        share = len(rows) * self.world / size
        taken = rows if len(rows) else np.arange(1)
        value, outputs = self.torch_step.step(
            *self.tensors(_rows(x, taken), _rows(labels, taken), _rows(targets, taken)),
            scale=share,
            weights=self.example_weights(loss, taken),
        )
        values, outs = self.results(value, outputs)
        totals = torch.tensor([each * len(rows) for each in values], dtype=torch.float64)
        dist.all_reduce(totals)
        everyone: list[Any] = [None] * self.world
        dist.all_gather_object(everyone, [out[: len(rows)] for out in outs])
        return self.as_taken(
            [float(total) / size for total in totals],
            [np.concatenate([shares[index] for shares in everyone]) for index in range(len(outs))],
        )


def _rows(batch: Batch, rows: np.ndarray) -> Batch:
    """The rows ``rows`` of a batch: of its array, or of each of its arrays (one per model input or output)."""
    return [each[rows] for each in batch] if isinstance(batch, list) else batch[rows]


class WorkerTrainer(loop.Trainer):
    """The loop on one worker: worker 0 writes the run directory and reports each checkpoint through Ray;
    the others only report that the epoch is done."""

    rank = 0

    def end_epoch(self) -> None:
        import ray.train

        if self.rank != 0:
            ray.train.report({"epoch": self.epoch})
            return
        super().end_epoch()
        with tempfile.TemporaryDirectory() as directory:
            shutil.copy2(self.run_dir / runs.CHECKPOINT, Path(directory) / runs.CHECKPOINT)
            ray.train.report({"epoch": self.epoch}, checkpoint=ray.train.Checkpoint.from_directory(directory))

    def save_best(self, epoch: int, logs: dict[str, float]) -> None:
        if self.rank == 0:
            super().save_best(epoch, logs)


class QueueProgress:
    """A worker's progress reports, put on a Ray queue for the driver to show."""

    def __init__(self, events: Any):
        self.events = events

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.events.put(("epoch_start", (epoch, epochs, steps)))

    def batch_end(self, step: int, logs: Mapping[str, float]) -> None:
        self.events.put(("batch_end", (step, dict(logs))))

    def epoch_end(self, logs: Mapping[str, float]) -> None:
        self.events.put(("epoch_end", (dict(logs),)))

    def message(self, text: str) -> None:
        self.events.put(("message", (text,)))


def train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the loop from the last checkpoint Ray has (after a failure) or the run's own."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    run_dir = Path(config["run_dir"])
    setup = loop.run_setup(run_dir)
    device = ray.train.torch.get_device() if config["use_gpu"] else torch.device("cpu")
    factory = functools.partial(ShardSteps, device=device, request=config["device"], rank=rank, world=world)
    progress = QueueProgress(config["events"]) if rank == 0 else Silent()
    trainer = WorkerTrainer(setup, run_dir, progress, (), factory)
    trainer.rank = rank
    # after a failure, the last checkpoint the Ray Train controller registered; when it had not yet registered
    # worker 0's last report (or on the first start), the run directory's, which worker 0 writes first
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        trainer.load_checkpoint()
    else:
        with checkpoint.as_directory() as directory:
            trainer.load_checkpoint(Path(directory))
    if rank == 0:
        config["events"].put(("started", (trainer.epoch,)))
    trainer.train()


class _Driver:
    """Shows the workers' progress on the driver's trainer (its console and TensorBoard log) and keeps its
    epoch and batch current, for the message of an interruption."""

    def __init__(self, trainer: loop.Trainer):
        self.trainer = trainer
        self.starts = 0
        #: the epoch each restart of the workers continued from
        self.restarts: list[int] = []

    def handle(self, kind: str, args: tuple) -> None:
        progress = self.trainer.progress
        if kind == "started":
            self.starts += 1
            if self.starts > 1:
                self.restarts.append(args[0])
                progress.message(
                    f"A worker failed; Ray Train started the workers again, from the checkpoint of epoch {args[0]}"
                )
            return
        if kind == "epoch_start":
            self.trainer.epoch = args[0]
        elif kind == "batch_end":
            self.trainer.batch = args[0]
        getattr(progress, kind)(*args)


def fit_on_ray(
    spec: Spec | None,
    workers: int,
    device: str,
    *,
    out: str | Path | None,
    root: str | Path,
    resume: str | Path | None,
    overrides: Sequence[str],
    progress: Progress,
    limits: dict[str, int | None],
    address: str | None,
    observers: Sequence[callback_kinds.Callback] = (),
) -> runs.Run:
    """Train on ``workers`` Ray Train workers, on their CPUs or (``device`` cuda, or auto on a cluster with the
    GPUs) GPUs, into a run directory (see the module's docstring)."""
    if observers:
        raise RunError(
            "a sweep's trials report from the process that trains them, which the ray backend is not; "
            "sweep on Ray Tune (sweep --backend ray) with fit.backend torch",
            file="fit.backend ray",
        )
    use_gpu = device == "cuda"  # the workers' GPUs: the cluster's, whether or not this machine has one
    with connect(address, "train", "train") as ray:
        available = ray.cluster_resources()
        use_gpu = use_gpu or (device == "auto" and available.get("GPU", 0) >= workers)
        unit = "GPU" if use_gpu else "CPU"
        count = int(available.get(unit, 0))
        if workers > count:
            fix = (
                f"give --workers {count} or fewer, or a larger cluster"
                if count
                else "train on CPUs (--device cpu) or join a cluster with GPUs"
            )
            raise RunError(
                f"the Ray cluster has {count} {unit}s and each worker takes one; {fix}", file=f"--workers {workers}"
            )
        trainer = loop.prepare(
            spec,
            functools.partial(TorchSteps, device=torch.device("cpu"), request="cpu"),
            out=out,
            root=root,
            resume=resume,
            overrides=overrides,
            progress=progress,
            limits=limits,
        )
        manifest = {
            "backend": "ray",
            "workers": workers,
            "device": "cuda" if use_gpu else "cpu",
            "device_request": device,
            "torch": torch.__version__,
            "ray": ray.__version__,
        }
        driver = _Driver(trainer)

        def train() -> None:
            _train_on_ray(trainer, driver, workers, device, use_gpu)
            trainer.load_checkpoint()
            if driver.restarts:
                runs.update_manifest(
                    trainer.run_dir, worker_restarts=len(driver.restarts), restarted_from_epochs=driver.restarts
                )
                trainer.progress.message(
                    f"{len(driver.restarts)} worker failure(s) during training; each time it "
                    "continued from the last checkpoint (epochs "
                    f"{', '.join(str(epoch) for epoch in driver.restarts)})"
                )

        return loop.supervise(trainer, train, manifest)


def _train_on_ray(trainer: loop.Trainer, driver: _Driver, workers: int, device: str, use_gpu: bool) -> None:
    """Ray Train's TorchTrainer over the run, its progress shown here while it runs."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    events = Queue(maxsize=QUEUED_EVENTS, actor_options={"num_cpus": 0})
    run_dir = trainer.run_dir.resolve()
    name = next(f"ray-{n}" for n in range(1, 10_000) if not (run_dir / f"ray-{n}").exists())
    ray_trainer = TorchTrainer(
        train_worker,
        train_loop_config={"run_dir": str(run_dir), "events": events, "use_gpu": use_gpu, "device": device},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(
            name=name,
            storage_path=str(run_dir),
            failure_config=FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    outcome: dict[str, BaseException] = {}

    def fit() -> None:
        try:
            ray_trainer.fit()
        except BaseException as error:  # shown by the driver's thread below
            outcome["error"] = error

    thread = threading.Thread(target=fit, name="ray-train", daemon=True)
    thread.start()
    while thread.is_alive() or not events.empty():
        try:
            driver.handle(*events.get(timeout=POLL_SECONDS))
        except (Empty, queue.Empty):
            continue
    if "error" in outcome:
        error = outcome["error"]
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise RunError(f"Ray Train failed: {first}", file=runs.display_path(trainer.run_dir)) from None
