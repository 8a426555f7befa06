"""The training loop: batches, steps, validation, callbacks, checkpoints, resume (the run directory's
files belong to ``specforge.runs.directory``, evaluation to ``specforge.training.evaluate``).

Randomness comes from the spec's ``fit.seed`` only: the initial weights from
``Generator(PCG64(seed))``, shuffling and dropout from two generators spawned from
``SeedSequence(seed)``.  The checkpoint written at the end of every epoch holds the
weights, the optimizer state, both generators' states, the callbacks' states and the
history, so a resumed run ends with the same weights, bit for bit, as one never stopped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specforge.base.errors import DataError, RunError, SpecError, TrainingInterrupted
from specforge.data import Dataset, Preprocessing, Split, batch_count, iterate_batches, load_data
from specforge.data.feed import Feed, make_feed
from specforge.graph.build import build_graph
from specforge.graph.dag import Graph
from specforge.graph.model import Model, params_from_arrays
from specforge.graph.training_checks import check_warmup
from specforge.ops import kernels
from specforge.options import callbacks, optimizers
from specforge.options.losses import Loss
from specforge.runs import directory as runs
from specforge.spec import Spec
from specforge.training.evaluate import evaluate_split
from specforge.training.heads import Head, Tally, create_heads, log_names, weighted_total
from specforge.training.moving_statistics import unsettled_statistics
from specforge.training.options import weight_average, weighting
from specforge.training.progress import Both, ConsoleProgress, Progress
from specforge.training.steps import NumpySteps, StepsFactory
from specforge.training.tensorboard import TensorBoardLog


class LossNotFinite(RunError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class _Setup:
    """Everything a run trains with, built from its spec."""

    spec: Spec
    graph: Graph
    dataset: Dataset
    #: the model's outputs, each with its loss, metrics and weight (specforge.training.heads)
    heads: list[Head]
    optimizer: optimizers.Optimizer
    callbacks: list[callbacks.Callback]
    #: how a batch feeds the model's inputs
    feed: Feed

    @property
    def fit(self) -> dict:
        return self.spec.config["fit"]

    @property
    def loss(self) -> Loss | list[Loss]:
        """What the backend's step takes: the loss of the only output, or one loss per output."""
        return self.heads[0].loss if len(self.heads) == 1 else [head.loss for head in self.heads]

    def log_names(self) -> list[str]:
        names = log_names(self.heads)
        return names + [f"val_{name}" for name in names] if self.dataset.validation is not None else names

    def evaluate(self, model: Model, split: Split) -> dict[str, float]:
        """Loss and metrics of ``model`` on ``split``, as training logs them."""
        return evaluate_split(model, split, self.heads, self.fit["batch_size"], feed=self.feed)


def _setup(spec: Spec, base_dir: Path, limits: dict[str, int | None], fitted: Preprocessing | None = None) -> _Setup:
    graph = build_graph(spec)
    config = spec.config
    try:
        dataset = load_data(config, base_dir, limits, graph.input_dtype, fitted)
    except DataError as error:
        raise spec.located(error) from None
    setup = _Setup(
        spec,
        graph,
        dataset,
        create_heads(config, graph),
        optimizers.create(config["compile"]["optimizer"]),
        [],
        make_feed(config["data"], dataset.preprocessing.pipeline),
    )
    check_warmup(spec, len(dataset.train))
    try:
        setup.callbacks = callbacks.create(config["fit"]["callbacks"], setup.log_names())
    except SpecError as error:
        raise spec.located(error) from None
    return setup


def generators(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """``(init, shuffle, dropout)`` generators of a run, all from ``seed``."""
    shuffle, dropout = (np.random.Generator(np.random.PCG64(child)) for child in np.random.SeedSequence(seed).spawn(2))
    return np.random.Generator(np.random.PCG64(seed)), shuffle, dropout


class Trainer:
    """One run's training state; offers callbacks what ``specforge.options.callbacks.Trainer`` describes."""

    def __init__(
        self,
        setup: _Setup,
        run_dir: Path,
        progress: Progress,
        observers: Sequence[callbacks.Callback] = (),
        backend: StepsFactory = NumpySteps,
    ):
        self.setup = setup
        #: callbacks from outside the spec (a sweep's pruning), called after the spec's and not checkpointed
        self.callbacks = [*setup.callbacks, *observers]
        self.run_dir = run_dir
        self.progress = progress
        init_rng, self.shuffle_rng, self.dropout_rng = generators(setup.fit["seed"])
        if backend is NumpySteps:  # the compiled kernels, loaded now to say on the progress line when compiling
            kernels.load(progress.message)
        self.model = Model.initialize(setup.graph, init_rng)
        #: the backend's step function; the model holds the weights between epochs (``steps.pull``)
        self.steps = backend(self.model, setup.spec, setup.loss, setup.optimizer, self.dropout_rng)
        self.optimizer = self.steps.optimizer
        try:
            self.weighting = weighting(
                setup.spec.config, setup.heads[0].loss, setup.dataset.train, setup.graph.output_shape[-1]
            )
        except DataError as error:
            raise setup.spec.located(error) from None
        self.ema = weight_average(setup.spec.config["compile"]["optimizer"], self.steps)
        self.stop_training = False
        self.epoch = 0
        #: the batch in progress (from 1), for the interruption message
        self.batch = 0
        self.history: dict[str, list[float]] = {name: [] for name in setup.log_names()}
        if self.optimizer.schedule is not None:
            self.history["learning_rate"] = []

    # -- the callbacks' view -------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        return [value.copy() for params in self.model.params for value in params.values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for target, value in zip((v for params in self.model.params for v in params.values()), weights, strict=True):
            np.copyto(target, value)
        self.steps.push()

    def save_best(self, epoch: int, logs: dict[str, float]) -> None:
        self.model.save_weights(self.run_dir / runs.BEST)

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, directory: Path | None = None) -> None:
        """Everything resume needs, into the run directory's checkpoint (or ``directory``'s)."""
        arrays = {f"weights/{key}": value for key, value in self.model.weight_arrays().items()}
        scalars: dict[str, Any] = {}
        for key, value in self.steps.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{key}"] = value
            else:
                scalars[key] = value
        if self.ema is not None:
            arrays.update({f"ema/{key}": value for key, value in self.ema.arrays().items()})
            scalars["ema_steps"] = self.ema.steps
        callback_states = []
        for index, callback in enumerate(self.setup.callbacks):
            state = {}
            for key, value in callback.state_dict().items():
                if isinstance(value, np.ndarray):
                    arrays[f"callbacks/{index}/{key}"] = value
                else:
                    state[key] = value
            callback_states.append(state)
        runs.save_checkpoint(
            directory or self.run_dir,
            arrays,
            {
                "epoch": self.epoch,
                "stop_training": self.stop_training,
                "optimizer": scalars,
                "callbacks": callback_states,
                "history": self.history,
                "rng": {
                    "shuffle": self.shuffle_rng.bit_generator.state,
                    "dropout": self.dropout_rng.bit_generator.state,
                },
            },
        )

    def load_checkpoint(self, directory: Path | None = None) -> None:
        """The state of the run directory's checkpoint (or ``directory``'s)."""
        arrays, state = runs.load_checkpoint(directory or self.run_dir)
        source = str((directory or self.run_dir) / runs.CHECKPOINT)
        weights = {key.removeprefix("weights/"): value for key, value in arrays.items() if key.startswith("weights/")}
        self.model.set_weights(params_from_arrays(self.setup.graph, weights, source))
        self.steps.push()
        optimizer_state = dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load(optimizer_state.pop("ema_steps"), _with_prefix(arrays, "ema/"))
        self.steps.load_state_dict({**optimizer_state, **_with_prefix(arrays, "optimizer/")})
        if len(state["callbacks"]) != len(self.setup.callbacks):
            raise RunError(
                f"the checkpoint holds {len(state['callbacks'])} callback states for "
                f"{len(self.setup.callbacks)} callbacks in the spec",
                file=source,
            )
        for index, callback in enumerate(self.setup.callbacks):
            callback.load_state_dict({**state["callbacks"][index], **_with_prefix(arrays, f"callbacks/{index}/")})
        self.shuffle_rng.bit_generator.state = state["rng"]["shuffle"]
        self.dropout_rng.bit_generator.state = state["rng"]["dropout"]
        self.epoch, self.stop_training, self.history = state["epoch"], state["stop_training"], state["history"]

    # -- the loop --------------------------------------------------------------------------------
    def train(self) -> None:
        """Epochs from ``self.epoch`` to fit.epochs (or an early stop), a checkpoint after each."""
        setup, fit = self.setup, self.setup.fit
        for callback in self.callbacks:
            callback.on_train_begin(self)
        while self.epoch < fit["epochs"] and not self.stop_training:
            logs = self.train_epoch()
            if setup.dataset.validation is not None:
                with self.ema.applied() if self.ema is not None else nullcontext():
                    validation = setup.evaluate(self.model, setup.dataset.validation)
                logs.update({f"val_{name}": value for name, value in validation.items()})
            for name, value in logs.items():
                self.history[name].append(value)
            for callback in self.callbacks:
                callback.on_epoch_end(self.epoch, logs, self)
            self.progress.epoch_end(logs)
            self.epoch += 1
            self.end_epoch()
            if self.stop_training:
                self.progress.message(f"Epoch {self.epoch}: early stopping")
        if self.ema is not None:  # before the callbacks end, as Keras' finalize_variable_values
            self.ema.overwrite()
            self.steps.pull()
        for callback in self.callbacks:
            callback.on_train_end(self)

    def end_epoch(self) -> None:
        """The checkpoint and the manifest's count after an epoch."""
        self.save_checkpoint()
        runs.update_manifest(self.run_dir, epochs_completed=self.epoch)

    def train_epoch(self) -> dict[str, float]:
        setup, fit = self.setup, self.setup.fit
        train = setup.dataset.train
        for callback in self.callbacks:
            callback.on_epoch_begin(self.epoch, self)
        self.progress.epoch_start(self.epoch, fit["epochs"], batch_count(train, fit["batch_size"]))
        tally = Tally(setup.heads)
        several = len(setup.heads) > 1
        if self.weighting is not None:
            self.weighting.start_epoch(len(train), fit["batch_size"], fit["shuffle"], self.shuffle_rng)
        batches = iterate_batches(train, fit["batch_size"], shuffle=fit["shuffle"], rng=self.shuffle_rng)
        for step, (x, y) in enumerate(batches, 1):
            self.batch = step
            pairs = [head.labels_and_targets(y) for head in setup.heads]
            labels, targets = ([list(part) for part in zip(*pairs)]) if several else pairs[0]
            loss = setup.loss if self.weighting is None else self.weighting.loss_for(step, pairs[0][0])
            value, outputs = self.steps.step(setup.feed.split(x), labels, targets, loss)
            values, outs = (list(value), list(outputs)) if several else ([value], [outputs])
            total = weighted_total(setup.heads, values)
            if self.ema is not None and np.isfinite(total):
                self.ema.update()
            if not np.isfinite(total):
                raise LossNotFinite(
                    f"loss became {total} at epoch {self.epoch + 1}, batch {step}; the last good "
                    f"weights are in {runs.display_path(self.run_dir / runs.CHECKPOINT)}; lower the "
                    "learning rate or rescale the inputs",
                    file=runs.display_path(self.run_dir),
                )
            tally.add(values, outs, pairs, train.preprocessing)
            self.progress.batch_end(step, tally.logs())
        self.steps.pull()
        logs = tally.logs()
        if self.optimizer.schedule is not None:
            logs["learning_rate"] = self.optimizer.learning_rate
        return logs


def _with_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key.removeprefix(prefix): value for key, value in arrays.items() if key.startswith(prefix)}


def fit(
    spec: Spec | None = None,
    *,
    out: str | Path | None = None,
    root: str | Path = runs.RUNS_ROOT,
    resume: str | Path | None = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
    progress: Progress | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    observers: Sequence[callbacks.Callback] = (),
    steps: StepsFactory = NumpySteps,
) -> runs.Run:
    """Train ``spec`` into a new run directory, or continue the run ``resume``; return the finished run.

    ``out`` is the run directory itself (default: the next ``root/<spec name>/<n>``).  ``overrides``
    apply to a resumed run's spec (only ``fit.epochs``); a new run takes them through ``load_spec``.
    ``limit_train``/``limit_test`` keep the first N training / test and validation examples.
    ``progress`` receives the epoch and batch reports (default: Keras-style lines on stdout).
    ``observers`` are callbacks from outside the spec (a sweep's pruning), called after the spec's ones.
    ``steps`` makes the backend's step function (specforge.training.steps; the numpy backend by default,
    specforge.training.backends.fit picks one).
    Raises TrainingInterrupted on Ctrl-C and LossNotFinite when the loss stops being finite.
    """
    progress = progress or ConsoleProgress(quiet=quiet)
    trainer = prepare(
        spec,
        steps,
        out=out,
        root=root,
        resume=resume,
        overrides=overrides,
        progress=progress,
        limits={"train": limit_train, "test": limit_test},
        observers=observers,
    )
    return supervise(trainer, trainer.train, trainer.steps.manifest())


def prepare(
    spec: Spec | None,
    backend: StepsFactory,
    *,
    out: str | Path | None,
    root: str | Path,
    resume: str | Path | None,
    overrides: Sequence[str],
    progress: Progress,
    limits: dict[str, int | None],
    observers: Sequence[callbacks.Callback] = (),
) -> Trainer:
    """The trainer of a new run (its directory made, its first checkpoint written) or of the run ``resume``
    (its last checkpoint loaded)."""
    if resume is not None:
        run_dir = runs.resolve_run_path(resume)
        manifest = runs.read_json(run_dir / runs.MANIFEST)
        limited = any(value is not None for value in limits.values())
        spec = runs.resume_spec(run_dir, manifest, overrides, limited=limited)
        setup = _setup(
            spec,
            Path(manifest["base_dir"]),
            manifest["limits"],
            Preprocessing.from_dict(runs.read_json(run_dir / runs.PREPROCESSING)),
        )
        runs.check_same_data(run_dir, manifest, setup.dataset)
        trainer = Trainer(setup, run_dir, progress, observers, backend)
        trainer.load_checkpoint()  # before anything is written: a damaged checkpoint leaves the run as it was
        if overrides:
            runs.record_overrides(run_dir, manifest, spec, overrides)
        return trainer
    if spec is None:
        raise ValueError("fit needs a spec, or resume= naming a run")
    setup = _setup(spec, spec.base_dir, limits)
    run_dir = runs.start_run(spec, setup.dataset, out, root, limits)
    trainer = Trainer(setup, run_dir, progress, observers, backend)
    trainer.save_checkpoint()
    return trainer


def run_setup(run_dir: Path) -> _Setup:
    """What the run at ``run_dir`` trains with, from its stored spec (a data-parallel worker's view)."""
    manifest = runs.read_json(run_dir / runs.MANIFEST)
    spec = runs.run_spec(run_dir, manifest, runs.read_json(run_dir / runs.RESOLVED))
    return _setup(
        spec,
        Path(manifest["base_dir"]),
        manifest["limits"],
        Preprocessing.from_dict(runs.read_json(run_dir / runs.PREPROCESSING)),
    )


def supervise(trainer: Trainer, train: Callable[[], None], manifest: dict[str, Any]) -> runs.Run:
    """Run ``train`` (the epochs), then finish the run: its status in the manifest (with ``manifest``'s
    backend fields) whichever way it ends, TensorBoard's log closed; return the finished run."""
    run_dir, setup = trainer.run_dir, trainer.setup
    log = _tensorboard_log(trainer)
    runs.update_manifest(run_dir, status="running", **manifest)
    completed = False
    try:
        with _quiet_float_warnings():
            train()
        _finish(trainer)
        completed = True
    except KeyboardInterrupt:
        runs.update_manifest(run_dir, status="interrupted")
        raise TrainingInterrupted(
            run_dir, min(trainer.epoch + 1, setup.fit["epochs"]), trainer.batch, runs.display_path(run_dir)
        ) from None
    except BaseException:
        runs.update_manifest(run_dir, status="failed")
        raise
    finally:
        if log is not None:
            log.close(_final_values(trainer) if completed else None)
    return runs.open_run(run_dir)


def _tensorboard_log(trainer: Trainer):
    """The run's TensorBoard log when ``fit.log`` asks for one, receiving the reports beside the console."""
    fit = trainer.setup.fit
    if "tensorboard" not in fit.get("log", []):
        return None

    spec = trainer.setup.spec
    log = TensorBoardLog(
        trainer.run_dir,
        spec.config,
        fit["log_every"],
        first_epoch=trainer.epoch,
        where=spec.document.locate(("fit", "log")),
    )
    trainer.progress = Both(trainer.progress, log)
    return log


def _final_values(trainer: Trainer) -> dict[str, float]:
    """The last epoch's values and the test metrics (``test_loss``, ``test_accuracy``, ...)."""
    final = {name: values[-1] for name, values in trainer.history.items() if values}
    metrics_file = trainer.run_dir / runs.METRICS
    if metrics_file.exists():
        final.update(
            {
                f"test_{key}": value
                for key, value in runs.read_json(metrics_file).items()
                if key not in ("split", "examples")
            }
        )
    return final


@contextmanager
def _quiet_float_warnings() -> Iterator[None]:
    """No numpy overflow warnings (from any thread): overflow shows up as a non-finite loss, which stops
    training with its epoch and batch."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
        yield


def _finish(trainer: Trainer) -> None:
    """Final weights, history and the test split's metrics; the run is then complete.  A warning when the
    moving statistics of batch normalization had too few steps to move."""
    setup, run_dir = trainer.setup, trainer.run_dir
    trainer.model.save_weights(run_dir / runs.WEIGHTS)
    runs.write_history(run_dir, trainer.history)
    steps = trainer.epoch * batch_count(setup.dataset.train, setup.fit["batch_size"])
    unsettled = unsettled_statistics(setup.spec, setup.graph, steps)
    if unsettled is not None:
        trainer.progress.message(unsettled.format())
    test = setup.dataset.test
    if test is not None:
        results = setup.evaluate(trainer.model, test)
        runs.write_json(run_dir / runs.METRICS, {"split": "test", "examples": len(test), **results})
    manifest = runs.update_manifest(run_dir, status="completed", epochs_completed=trainer.epoch, steps_completed=steps)
    if runs.counts_as_latest(manifest):
        runs.point_latest(run_dir)


__all__ = ["LossNotFinite", "Trainer", "TrainingInterrupted", "fit", "generators"]
