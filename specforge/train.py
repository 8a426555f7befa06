"""The training loop: batches, steps, validation, callbacks, checkpoints, resume.

Randomness comes from the spec's ``fit.seed`` only: the initial weights from
``Generator(PCG64(seed))``, shuffling and dropout from two generators spawned from
``SeedSequence(seed)``.  The checkpoint written at the end of every epoch holds the
weights, the optimizer state, both generators' states, the callbacks' states and the
history, so a resumed run ends with the same weights, bit for bit, as one never stopped.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import yaml

from specforge import callbacks as callback_kinds
from specforge import losses, metrics as metric_kinds, optimizers, runs
from specforge.data import Dataset, Preprocessing, Split, batch_count, iterate_batches, load_dataset
from specforge.errors import RunError
from specforge.fileio import write_text
from specforge.graph import Graph
from specforge.losses import Loss
from specforge.metrics import Metric
from specforge.model import Model, params_from_arrays
from specforge.progress import ConsoleProgress, Progress
from specforge.spec import Spec, spec_from_dict

#: The only spec value a resumed run may change.
RESUMABLE_OVERRIDES = ("fit.epochs",)


class TrainingInterrupted(Exception):
    """Ctrl-C during training: the last epoch's checkpoint is on disk and the run is marked interrupted."""

    def __init__(self, run_dir: Path, epoch: int, batch: int):
        self.run_dir, self.epoch, self.batch = run_dir, epoch, batch
        super().__init__(f"interrupted at epoch {epoch}, batch {batch}; resume with: "
                         f"specforge train --resume {runs.display_path(run_dir)}")


class LossNotFinite(RunError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class _Setup:
    """Everything a run trains with, built from its spec."""

    spec: Spec
    graph: Graph
    dataset: Dataset
    loss: Loss
    metrics: list[Metric]
    optimizer: optimizers.Optimizer
    callbacks: list[callback_kinds.Callback]

    @property
    def fit(self) -> dict:
        return self.spec.config["fit"]

    def log_names(self) -> list[str]:
        names = ["loss", *(metric.name for metric in self.metrics)]
        return names + [f"val_{name}" for name in names] if self.dataset.validation is not None else names


def evaluate_split(model: Model, split: Split, loss: Loss, metrics: Sequence[Metric], batch_size: int,
                   preprocessing: Preprocessing | None = None) -> dict[str, float]:
    """The mean loss and the metrics of ``model`` on ``split`` (inference mode)."""
    fused = model.fuses(loss)
    until = len(model.graph.nodes) - 1 if fused else None
    units = model.graph.output_shape[-1]
    for metric in metrics:
        metric.reset()
    total, count = 0.0, 0
    for x, y in iterate_batches(split, batch_size, shuffle=False, preprocessing=preprocessing):
        outputs = model.forward(x, until=until)
        labels, targets = labels_and_targets(loss, y, units)
        total += loss.value(outputs, targets, from_logits=fused) * len(x)
        count += len(x)
        probabilities = loss.to_probabilities(outputs, fused)
        for metric in metrics:
            metric.update(probabilities, labels)
    return {"loss": total / count if count else float("nan"), **{m.name: m.result() for m in metrics}}


def labels_and_targets(loss: Loss, y: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer class labels (for metrics) and the loss's targets from a batch's preprocessed labels."""
    labels = y if y.ndim == 1 else y.argmax(axis=-1)
    expected = y.shape[:1] if loss.label_encoding == "sparse" else (len(y), units)
    return labels, (y if y.shape == expected else loss.encode_labels(labels, units))


def limit_dataset(dataset: Dataset, limit_train: int | None, limit_test: int | None) -> Dataset:
    """The first ``limit_train`` training examples and the first ``limit_test`` of the test and validation splits."""
    def first(split: Split | None, limit: int | None) -> Split | None:
        return split if split is None or limit is None else split.part(split.name, None, limit)

    return Dataset(first(dataset.train, limit_train), first(dataset.validation, limit_test),
                   first(dataset.test, limit_test), dataset.preprocessing, dataset.source_hash, dataset.digests)


def load_data(config: dict, base_dir: Path, limits: dict[str, int | None]) -> Dataset:
    """The data of a resolved spec ``config``, split as ``fit.validation`` says, cut to ``limits`` (train, test)."""
    dataset = load_dataset(config["data"], tuple(config["model"]["input_shape"]),
                           validation=config["fit"]["validation"], base_dir=base_dir)
    return limit_dataset(dataset, limits.get("train"), limits.get("test"))


def _setup(spec: Spec, base_dir: Path, limits: dict[str, int | None]) -> _Setup:
    from specforge.api import build

    graph = build(spec)
    config = spec.config
    dataset = load_data(config, base_dir, limits)
    setup = _Setup(spec, graph, dataset, losses.get(config["compile"]["loss"]),
                   metric_kinds.create(config["compile"]["metrics"], graph.output_shape[-1]),
                   optimizers.create(config["compile"]["optimizer"]), [])
    setup.callbacks = callback_kinds.create(config["fit"]["callbacks"], config["fit"]["epochs"], setup.log_names())
    return setup


def generators(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """``(init, shuffle, dropout)`` generators of a run, all from ``seed``."""
    shuffle, dropout = (np.random.Generator(np.random.PCG64(child)) for child in np.random.SeedSequence(seed).spawn(2))
    return np.random.Generator(np.random.PCG64(seed)), shuffle, dropout


class Trainer:
    """One run's training state; offers callbacks what ``specforge.callbacks.Trainer`` describes."""

    def __init__(self, setup: _Setup, run_dir: Path, progress: Progress,
                 observers: Sequence[callback_kinds.Callback] = ()):
        self.setup = setup
        #: callbacks from outside the spec (a sweep's pruning), called after the spec's and not checkpointed
        self.callbacks = [*setup.callbacks, *observers]
        self.run_dir = run_dir
        self.progress = progress
        init_rng, self.shuffle_rng, self.dropout_rng = generators(setup.fit["seed"])
        self.model = Model.initialize(setup.graph, init_rng)
        self.optimizer = setup.optimizer
        self.stop_training = False
        self.epoch = 0
        #: the batch in progress (from 1), for the interruption message
        self.batch = 0
        self.history: dict[str, list[float]] = {name: [] for name in setup.log_names()}

    # -- the callbacks' view -------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        return [value.copy() for params in self.model.params for value in params.values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        for target, value in zip((v for params in self.model.params for v in params.values()), weights, strict=True):
            np.copyto(target, value)

    def save_best(self, epoch: int, logs: dict[str, float]) -> None:
        self.model.save_weights(self.run_dir / runs.BEST)

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        arrays = {f"weights/{key}": value for key, value in self.model.weight_arrays().items()}
        scalars: dict[str, Any] = {}
        for key, value in self.optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer/{key}"] = value
            else:
                scalars[key] = value
        callback_states = []
        for index, callback in enumerate(self.setup.callbacks):
            state = {}
            for key, value in callback.state_dict().items():
                if isinstance(value, np.ndarray):
                    arrays[f"callbacks/{index}/{key}"] = value
                else:
                    state[key] = value
            callback_states.append(state)
        runs.save_checkpoint(self.run_dir, arrays, {
            "epoch": self.epoch, "stop_training": self.stop_training, "optimizer": scalars,
            "callbacks": callback_states, "history": self.history,
            "rng": {"shuffle": self.shuffle_rng.bit_generator.state, "dropout": self.dropout_rng.bit_generator.state},
        })

    def load_checkpoint(self) -> None:
        arrays, state = runs.load_checkpoint(self.run_dir)
        source = str(self.run_dir / runs.CHECKPOINT)
        weights = {key.removeprefix("weights/"): value for key, value in arrays.items() if key.startswith("weights/")}
        self.model.set_weights(params_from_arrays(self.setup.graph, weights, source))
        self.optimizer.load_state_dict({**state["optimizer"], **_with_prefix(arrays, "optimizer/")})
        if len(state["callbacks"]) != len(self.setup.callbacks):
            raise RunError(f"the checkpoint holds {len(state['callbacks'])} callback states for "
                           f"{len(self.setup.callbacks)} callbacks in the spec", file=source)
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
                validation = evaluate_split(self.model, setup.dataset.validation, setup.loss, setup.metrics,
                                            fit["batch_size"])
                logs.update({f"val_{name}": value for name, value in validation.items()})
            for name, value in logs.items():
                self.history[name].append(value)
            for callback in self.callbacks:
                callback.on_epoch_end(self.epoch, logs, self)
            self.progress.epoch_end(logs)
            self.epoch += 1
            self.save_checkpoint()
            runs.update_manifest(self.run_dir, epochs_completed=self.epoch)
            if self.stop_training:
                self.progress.message(f"Epoch {self.epoch}: early stopping")
        for callback in self.callbacks:
            callback.on_train_end(self)

    def train_epoch(self) -> dict[str, float]:
        setup, fit = self.setup, self.setup.fit
        train = setup.dataset.train
        units = setup.graph.output_shape[-1]
        for callback in self.callbacks:
            callback.on_epoch_begin(self.epoch, self)
        self.progress.epoch_start(self.epoch, fit["epochs"], batch_count(train, fit["batch_size"]))
        for metric in setup.metrics:
            metric.reset()
        total, count = 0.0, 0
        batches = iterate_batches(train, fit["batch_size"], shuffle=fit["shuffle"], rng=self.shuffle_rng)
        for step, (x, y) in enumerate(batches, 1):
            self.batch = step
            labels, targets = labels_and_targets(setup.loss, y, units)
            value, outputs = self.model.train_step(x, targets, setup.loss, self.optimizer, self.dropout_rng)
            if not np.isfinite(value):
                raise LossNotFinite(f"loss became {value} at epoch {self.epoch + 1}, batch {step}; the last good "
                                    f"weights are in {runs.display_path(self.run_dir / runs.CHECKPOINT)}; lower the "
                                    "learning rate or rescale the inputs", file=runs.display_path(self.run_dir))
            total += value * len(x)
            count += len(x)
            for metric in setup.metrics:
                metric.update(outputs, labels)
            self.progress.batch_end(step, {"loss": total / count, **{m.name: m.result() for m in setup.metrics}})
        return {"loss": total / count, **{m.name: m.result() for m in setup.metrics}}


def _with_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {key.removeprefix(prefix): value for key, value in arrays.items() if key.startswith(prefix)}


def _spec_text(spec: Spec) -> str:
    path = Path(spec.file)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return yaml.safe_dump(spec.document.data, sort_keys=False)


def _start_run(spec: Spec, setup: _Setup, out: str | Path | None, root: str | Path,
               limits: dict[str, int | None]) -> Path:
    run_dir = runs.create_run_dir(spec.name, out, root)
    if out is None:
        runs.point_latest(run_dir)
    write_text(run_dir / runs.SPEC_TEXT, _spec_text(spec))
    runs.write_json(run_dir / runs.RESOLVED, spec.config)
    runs.write_json(run_dir / runs.PREPROCESSING, setup.dataset.preprocessing.to_dict())
    created = runs.now()
    runs.write_json(run_dir / runs.MANIFEST, {
        "spec": spec.name, "spec_file": str(Path(spec.file).resolve()) if Path(spec.file).is_file() else spec.file,
        "base_dir": str(spec.base_dir), "spec_sha256": spec.sha256(), "seed": spec.config["fit"]["seed"],
        "overrides": list(spec.document.overrides.values()), "limits": limits,
        "data_hash": setup.dataset.source_hash, "data_files": setup.dataset.digests,
        **runs.environment(),
        "status": "running", "epochs": spec.config["fit"]["epochs"], "epochs_completed": 0,
        "created": created, "updated": created,
    })
    return run_dir


def _resume_spec(run_dir: Path, overrides: Sequence[str]) -> Spec:
    for text in overrides:
        if text.partition("=")[0].strip() not in RESUMABLE_OVERRIDES:
            raise RunError(f"--set {text}: a resumed run keeps the spec it started with; only "
                           f"{', '.join(RESUMABLE_OVERRIDES)} can change", file=runs.display_path(run_dir))
    return spec_from_dict(runs.read_json(run_dir / runs.RESOLVED), overrides, file=str(run_dir / runs.RESOLVED))


def fit(spec: Spec | None = None, *, out: str | Path | None = None, root: str | Path = runs.RUNS_ROOT,
        resume: str | Path | None = None, overrides: Sequence[str] = (), quiet: bool = False,
        progress: Progress | None = None, limit_train: int | None = None,
        limit_test: int | None = None, observers: Sequence[callback_kinds.Callback] = ()) -> runs.Run:
    """Train ``spec`` into a new run directory, or continue the run ``resume``; return the finished run.

    ``out`` is the run directory itself (default: the next ``root/<spec name>/<n>``).  ``overrides``
    apply to a resumed run's spec (only ``fit.epochs``); a new run takes them through ``load_spec``.
    ``limit_train``/``limit_test`` keep the first N training / test and validation examples.
    ``progress`` receives the epoch and batch reports (default: Keras-style lines on stdout).
    ``observers`` are callbacks from outside the spec (a sweep's pruning), called after the spec's ones.
    Raises TrainingInterrupted on Ctrl-C and LossNotFinite when the loss stops being finite.
    """
    progress = progress or ConsoleProgress(quiet=quiet)
    if resume is not None:
        run_dir = runs.resolve_run_path(resume)
        if limit_train is not None or limit_test is not None:
            raise RunError("a resumed run keeps the example limits it started with; leave out --limit-train and "
                           "--limit-test", file=runs.display_path(run_dir))
        manifest = runs.read_json(run_dir / runs.MANIFEST)
        if manifest["status"] == "completed" and not overrides:
            raise RunError("the run has completed all its epochs; to train it longer: specforge train --resume "
                           f"{runs.display_path(run_dir)} --set fit.epochs=N", file=runs.display_path(run_dir))
        spec = _resume_spec(run_dir, overrides)
        limits = manifest["limits"]
        setup = _setup(spec, Path(manifest["base_dir"]), limits)
        if setup.dataset.source_hash != manifest["data_hash"]:
            raise RunError("the data has changed since the run started (its hash differs from the manifest's); "
                           "a resumed run must train on the same data", file=runs.display_path(run_dir))
        if overrides:
            runs.write_json(run_dir / runs.RESOLVED, spec.config)
            runs.update_manifest(run_dir, spec_sha256=spec.sha256(), epochs=spec.config["fit"]["epochs"],
                                 overrides=manifest["overrides"] + list(overrides))
        trainer = Trainer(setup, run_dir, progress, observers)
        trainer.load_checkpoint()
    else:
        if spec is None:
            raise ValueError("fit needs a spec, or resume= naming a run")
        limits = {"train": limit_train, "test": limit_test}
        setup = _setup(spec, spec.base_dir, limits)
        run_dir = _start_run(spec, setup, out, root, limits)
        trainer = Trainer(setup, run_dir, progress, observers)
        trainer.save_checkpoint()
    runs.update_manifest(run_dir, status="running")
    try:
        with _quiet_float_warnings():
            trainer.train()
        _finish(trainer)
    except KeyboardInterrupt:
        runs.update_manifest(run_dir, status="interrupted")
        raise TrainingInterrupted(run_dir, min(trainer.epoch + 1, setup.fit["epochs"]), trainer.batch) from None
    except BaseException:
        runs.update_manifest(run_dir, status="failed")
        raise
    return runs.open_run(run_dir)


@contextmanager
def _quiet_float_warnings() -> Iterator[None]:
    """No numpy overflow warnings (from any thread): overflow shows up as a non-finite loss, which stops
    training with its epoch and batch."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
        yield


def _finish(trainer: Trainer) -> None:
    """Final weights, history and the test split's metrics; the run is then complete."""
    setup, run_dir = trainer.setup, trainer.run_dir
    trainer.model.save_weights(run_dir / runs.WEIGHTS)
    runs.write_history(run_dir, trainer.history)
    test = setup.dataset.test
    if test is not None:
        results = evaluate_split(trainer.model, test, setup.loss, setup.metrics, setup.fit["batch_size"])
        runs.write_json(run_dir / runs.METRICS, {"split": "test", "examples": len(test), **results})
    runs.update_manifest(run_dir, status="completed", epochs_completed=trainer.epoch)


def evaluate(run: runs.Run, split: str = "test", *, batch_size: int | None = None,
             limit: int | None = None) -> dict[str, Any]:
    """Loss and metrics of a finished run on ``split`` (test, train or validation), with the run's preprocessing."""
    config = run.config
    dataset = load_data(config, Path(run.manifest.get("base_dir", ".")), {})
    chosen = dataset.splits().get(split)
    if chosen is None:
        raise RunError(f"the run's data has no {split} split; use one of: {', '.join(dataset.splits())}",
                       file=runs.display_path(run.path))
    if limit is not None:
        chosen = chosen.part(chosen.name, None, limit)
    model = run.model()
    results = evaluate_split(model, chosen, losses.get(config["compile"]["loss"]),
                             metric_kinds.create(config["compile"]["metrics"], model.graph.output_shape[-1]),
                             batch_size or config["fit"]["batch_size"], Preprocessing.from_dict(run.preprocessing))
    return {"split": split, "examples": len(chosen), **results}


__all__ = ["fit", "evaluate", "evaluate_split", "Trainer", "TrainingInterrupted", "LossNotFinite"]
