import math

import numpy as np
import pytest

from specforge.base.errors import SpecError
from specforge.options import callbacks


class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class FakeTrainer:
    """Weights that record the epoch that produced them; saves and learning rates recorded per epoch."""

    def __init__(self, learning_rate=0.1):
        self.optimizer = FakeOptimizer(learning_rate)
        self.stop_training = False
        self.weights = [np.array([-1.0]), np.zeros((2, 2))]
        self.saved = []
        self.learning_rates = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]

    def save_best(self, epoch, logs):
        self.saved.append(epoch)


def create(spec_list: list[dict], epochs: int | None = None, log_names: list[str] | None = None) -> list:
    """The callbacks a spec's ``fit.callbacks`` describes, resolved as the spec resolves them."""
    return callbacks.create(callbacks.resolve(spec_list, epochs), log_names)


def test_a_callback_is_built_from_its_resolved_options_only():
    """Defaults are filled once, when the spec is resolved: the factory takes every option and adds none."""
    (stopping,) = create([{"type": "EarlyStopping", "patience": 2}])
    assert (stopping.monitor, stopping.patience, stopping.min_delta, stopping.path) == (
        "val_loss",
        2,
        0,
        "fit.callbacks[0]",
    )
    with pytest.raises(TypeError, match="monitor"):
        callbacks.create([{"type": "EarlyStopping", "patience": 2}])


def fit(spec, values, monitor="val_loss", trainer=None, first_epoch=0, epochs=None, end=True, objects=None):
    """Run the callbacks over scripted epoch values the way the training loop does; return the trainer
    and the callbacks. ``epochs`` is fit.epochs for the schedules."""
    trainer = trainer or FakeTrainer()
    objects = objects or create(spec if isinstance(spec, list) else [spec], epochs or len(values))
    for callback in objects:
        callback.on_train_begin(trainer)
    for epoch in range(first_epoch, first_epoch + len(values)):
        for callback in objects:
            callback.on_epoch_begin(epoch, trainer)
        trainer.learning_rates.append(trainer.optimizer.learning_rate)
        trainer.weights[0][:] = epoch  # "training" this epoch
        logs = {"loss": 0.0, monitor: values[epoch - first_epoch]}
        for callback in objects:
            callback.on_epoch_end(epoch, logs, trainer)
        if trainer.stop_training:
            break
    if end:
        for callback in objects:
            callback.on_train_end(trainer)
    return trainer, objects


# -- EarlyStopping --------------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    # Best 0.8 at epoch 1; epochs 2 and 3 do not improve; with patience 2 training stops at epoch 3.
    trainer, (stopper,) = fit(
        {"type": "EarlyStopping", "patience": 2, "restore_best_weights": True}, [1.0, 0.8, 0.85, 0.9, 0.7, 0.6]
    )
    assert trainer.stop_training and stopper.stopped_epoch == 3
    assert trainer.learning_rates == [0.1] * 4  # epochs 0..3 ran
    assert stopper.best == 0.8 and stopper.best_epoch == 1
    assert trainer.weights[0][0] == 1.0


def test_early_stopping_without_restore_keeps_the_last_weights():
    trainer, _ = fit({"type": "EarlyStopping", "patience": 2}, [1.0, 0.8, 0.85, 0.9, 0.7])
    assert trainer.weights[0][0] == 3.0


def test_early_stopping_patience_zero_stops_at_the_first_worse_epoch():
    _trainer, (stopper,) = fit({"type": "EarlyStopping"}, [1.0, 0.9, 0.95, 0.5])
    assert stopper.stopped_epoch == 2


def test_early_stopping_min_delta():
    # 0.95 and 0.92 improve on 1.0 by less than 0.1: no improvement, stop at epoch 1 with patience 1.
    _, (stopper,) = fit({"type": "EarlyStopping", "patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.92])
    assert stopper.stopped_epoch == 1 and stopper.best == 1.0
    _, (stopper,) = fit({"type": "EarlyStopping", "patience": 1}, [1.0, 0.95, 0.92])
    assert stopper.stopped_epoch == 0 and stopper.best == 0.92


def test_early_stopping_on_a_metric_watches_for_increase():
    trainer, (stopper,) = fit(
        {"type": "EarlyStopping", "monitor": "val_accuracy"}, [0.5, 0.6, 0.7], monitor="val_accuracy"
    )
    assert not trainer.stop_training and stopper.best == 0.7
    trainer, _ = fit(
        {"type": "EarlyStopping", "monitor": "val_accuracy", "mode": "min"}, [0.5, 0.6, 0.7], monitor="val_accuracy"
    )
    assert trainer.stop_training


def test_early_stopping_start_from_epoch():
    # Epochs 0 and 1 are warm-up (rising values ignored); best 3.0 at epoch 2, stop at epoch 3.
    _, (stopper,) = fit({"type": "EarlyStopping", "start_from_epoch": 2}, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 3


def test_restore_best_weights_also_when_training_was_not_stopped():
    trainer, (_stopper,) = fit({"type": "EarlyStopping", "patience": 5, "restore_best_weights": True}, [0.5, 0.9, 0.8])
    assert not trainer.stop_training and trainer.weights[0][0] == 0.0


def test_early_stopping_resumes_identically():
    spec = {"type": "EarlyStopping", "patience": 2, "restore_best_weights": True}
    values = [1.0, 0.8, 0.85, 0.9, 0.7]
    straight, _ = fit(spec, values)
    trainer, (first,) = fit(spec, values[:3], end=False)
    resumed = create([spec])
    resumed[0].load_state_dict(first.state_dict())
    trainer.stop_training = False
    trainer, (again,) = fit(spec, values[3:], trainer=trainer, first_epoch=3, objects=resumed)
    assert again.stopped_epoch == 3 and trainer.weights[0][0] == straight.weights[0][0] == 1.0


# -- ModelCheckpoint ------------------------------------------------------------------------------


def test_model_checkpoint_saves_on_improvement():
    trainer, _ = fit({"type": "ModelCheckpoint"}, [0.5, 0.4, 0.6, 0.3])
    assert trainer.saved == [0, 1, 3]
    trainer, _ = fit(
        {"type": "ModelCheckpoint", "monitor": "val_accuracy"}, [0.5, 0.4, 0.6, 0.3], monitor="val_accuracy"
    )
    assert trainer.saved == [0, 2]
    trainer, _ = fit({"type": "ModelCheckpoint", "save_best_only": False}, [0.5, 0.4, 0.6])
    assert trainer.saved == [0, 1, 2]


def test_model_checkpoint_resumes_with_its_best():
    _, (first,) = fit({"type": "ModelCheckpoint"}, [0.5, 0.4])
    (resumed,) = create([{"type": "ModelCheckpoint"}])
    resumed.load_state_dict(first.state_dict())
    trainer, _ = fit(None, [0.45, 0.3], first_epoch=2, objects=[resumed])
    assert trainer.saved == [3]


# -- ReduceLROnPlateau ----------------------------------------------------------------------------


def test_reduce_lr_on_plateau_by_hand():
    # lr 0.1, factor 0.5, patience 2, cooldown 1, min_lr 0.02; the loss never improves after epoch 0.
    # Epochs without improvement counted at the end of each epoch (c: cooldown, the count restarts):
    # e1 1, e2 2 -> 0.05 | e3 c then 1, e4 2 -> 0.025 | e5 c then 1, e6 2 -> max(0.0125, 0.02) = 0.02 |
    # e7 c then 1, e8 2 -> already at min_lr, unchanged. Rates are recorded at the start of each epoch.
    spec = {"type": "ReduceLROnPlateau", "factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.02}
    trainer, _ = fit(spec, [1.0] * 10)
    assert trainer.learning_rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02])


def test_reduce_lr_on_plateau_improvement_resets_the_wait():
    # With patience 2 and min_delta 1e-4: 1.0, 0.9 (improves), 0.95, 0.85 (improves), 0.86, 0.87 -> reduce at epoch 5.
    trainer, _ = fit({"type": "ReduceLROnPlateau", "patience": 2}, [1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.8])
    assert trainer.learning_rates == pytest.approx([0.1] * 6 + [0.01])
    # An improvement smaller than min_delta does not count.
    trainer, _ = fit({"type": "ReduceLROnPlateau", "patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.9])
    assert trainer.learning_rates == pytest.approx([0.1, 0.1, 0.01])


def test_reduce_lr_on_plateau_resumes_identically():
    spec = {"type": "ReduceLROnPlateau", "factor": 0.5, "patience": 2, "cooldown": 1}
    values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    straight, _ = fit(spec, values)
    trainer, (first,) = fit(spec, values[:3])
    resumed = create([spec])
    resumed[0].load_state_dict(first.state_dict())
    trainer, _ = fit(spec, values[3:], trainer=trainer, first_epoch=3, objects=resumed)
    assert trainer.learning_rates == straight.learning_rates


# -- LearningRateScheduler ------------------------------------------------------------------------


def test_step_schedule():
    trainer, _ = fit({"type": "LearningRateScheduler", "schedule": "step", "step_size": 2, "gamma": 0.5}, [0.0] * 5)
    assert trainer.learning_rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_exponential_schedule():
    trainer, _ = fit({"type": "LearningRateScheduler", "schedule": "exponential", "decay_rate": 0.9}, [0.0] * 3)
    assert trainer.learning_rates == pytest.approx([0.1, 0.09, 0.081])


def test_cosine_schedule_over_fit_epochs():
    # initial 1, alpha 0.1, 4 epochs: 0.1 + 0.45 (1 + cos(pi e / 4)) for e = 0..3, then held at 0.1.
    trainer, _ = fit(
        {"type": "LearningRateScheduler", "schedule": "cosine", "alpha": 0.1},
        [0.0] * 6,
        trainer=FakeTrainer(1.0),
        epochs=4,
    )
    assert trainer.learning_rates == pytest.approx(
        [1.0, 0.1 + 0.45 * (1 + math.sqrt(0.5)), 0.55, 0.1 + 0.45 * (1 - math.sqrt(0.5)), 0.1, 0.1]
    )
    trainer, _ = fit(
        {"type": "LearningRateScheduler", "schedule": "cosine", "total_epochs": 2},
        [0.0] * 3,
        trainer=FakeTrainer(1.0),
        epochs=10,
    )
    assert trainer.learning_rates == pytest.approx([1.0, 0.5, 0.0])


def test_schedule_resumes_from_the_initial_learning_rate():
    spec = {"type": "LearningRateScheduler", "schedule": "step", "step_size": 1, "gamma": 0.5}
    trainer, (first,) = fit(spec, [0.0] * 2)
    assert trainer.optimizer.learning_rate == 0.05
    resumed = create([spec])
    resumed[0].load_state_dict(first.state_dict())
    trainer, _ = fit(spec, [0.0] * 2, trainer=trainer, first_epoch=2, objects=resumed)
    assert trainer.learning_rates == pytest.approx([0.1, 0.05, 0.025, 0.0125])


# -- spec values ----------------------------------------------------------------------------------


def test_resolve_fills_the_schema_defaults():
    from specforge.base.defaults import with_defaults

    for spec in (
        [{"type": "EarlyStopping"}, {"type": "ModelCheckpoint"}, {"type": "ReduceLROnPlateau"}],
        [{"type": "LearningRateScheduler", "schedule": "step", "step_size": 3}],
        [{"type": "LearningRateScheduler", "schedule": "exponential", "decay_rate": 0.5}],
    ):
        assert callbacks.resolve(spec, 5) == with_defaults(spec, callbacks.CALLBACKS_SCHEMA)
    cosine = callbacks.resolve([{"type": "LearningRateScheduler", "schedule": "cosine"}], 7)
    assert cosine == [{"type": "LearningRateScheduler", "schedule": "cosine", "total_epochs": 7, "alpha": 0.0}]
    assert callbacks.resolve([{"type": "EarlyStopping"}])[0] == {
        "type": "EarlyStopping",
        "monitor": "val_loss",
        "min_delta": 0,
        "patience": 0,
        "mode": "auto",
        "restore_best_weights": False,
        "start_from_epoch": 0,
    }


def test_monitor_must_be_reported():
    with pytest.raises(SpecError, match="there is no validation data") as error:
        create(
            [{"type": "ModelCheckpoint"}, {"type": "EarlyStopping", "monitor": "val_loss"}],
            3,
            log_names=["loss", "accuracy"],
        )
    assert error.value.problems[0].location.path == "fit.callbacks[0].monitor"
    create([{"type": "EarlyStopping", "monitor": "accuracy"}], 3, log_names=["loss", "accuracy"])
    with pytest.raises(SpecError, match="monitors 'val_acc', which training does not report"):
        fit({"type": "EarlyStopping", "monitor": "val_acc"}, [1.0])


def test_schema_is_precise():
    from jsonschema import Draft7Validator

    validator = Draft7Validator(callbacks.CALLBACKS_SCHEMA)
    assert validator.is_valid([{"type": "LearningRateScheduler", "schedule": "cosine", "alpha": 0.01}])
    errors = list(validator.iter_errors([{"type": "LearningRateScheduler", "schedule": "cosine", "gamma": 0.1}]))
    assert [e.validator for e in errors] == ["additionalProperties"] and "gamma" in errors[0].message
    errors = list(validator.iter_errors([{"type": "LearningRateScheduler", "schedule": "step"}]))
    assert [e.validator for e in errors] == ["required"] and "step_size" in errors[0].message
