import dataclasses
import io
import json
import math

import numpy as np
import pytest

from specforge.base.errors import RunError
from specforge.ops import flat
from specforge.options import optimizers

START = [np.array([1.0, -2.0, 0.5]), np.array([[0.3, -0.7], [2.0, 0.0]])]
GRADS = [  # three steps; magnitudes shrink so that AMSGrad's running maximum differs from v
    [np.array([2.0, -1.0, 0.5]), np.array([[1.0, 3.0], [-0.2, 0.7]])],
    [np.array([0.5, 0.1, -0.4]), np.array([[-0.3, 0.2], [0.1, -0.9]])],
    [np.array([-0.1, 0.05, 0.3]), np.array([[0.2, -0.1], [0.05, 0.4]])],
]


def create(spec_value: str | dict) -> optimizers.Optimizer:
    """The optimizer a spec's ``compile.optimizer`` value describes, resolved as the spec resolves it."""
    return optimizers.create(optimizers.resolve(spec_value))


def test_an_optimizer_is_built_from_its_resolved_options_only():
    """Defaults are filled once, when the spec is resolved: the factory takes every option and adds none."""
    resolved = optimizers.resolve({"name": "adam", "learning_rate": 0.01})
    optimizer = optimizers.create(resolved)
    assert optimizer.config == {key: value for key, value in resolved.items() if key != "name"}
    assert (optimizer.beta_1, optimizer.amsgrad) == (0.9, False)
    with pytest.raises(TypeError, match="beta_1"):
        optimizers.create({"name": "adam", "learning_rate": 0.01})


@pytest.mark.parametrize("name", optimizers.OPTIMIZER_NAMES)
def test_each_optimizer_has_its_schema_options_as_typed_fields(name):
    kind = optimizers.OPTIMIZERS[name]
    options = {option.name for option in dataclasses.fields(kind) if option.init}
    schema = optimizers.OPTIMIZER_SCHEMA["allOf"][2 + optimizers.OPTIMIZER_NAMES.index(name)]["then"]["properties"]
    assert options == set(schema) - {"name"}


def run(optimizer, dtype=np.float64, steps=GRADS):
    params = [p.astype(dtype) for p in START]
    for grads in steps:
        optimizer.step(params, [g.astype(dtype) for g in grads])
    return params


def elementwise(reference):
    """Apply a plain-Python scalar reference to every weight element over the scripted steps."""
    results = []
    for index, start in enumerate(START):
        flat = [
            reference(value, [float(step[index].ravel()[k]) for step in GRADS])
            for k, value in enumerate(start.ravel().tolist())
        ]
        results.append(np.array(flat).reshape(start.shape))
    return results


def assert_matches(params, expected, rtol=1e-12):
    for got, want in zip(params, expected):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-15)


# -- update rules against plain-Python formulas ---------------------------------------------------


def test_sgd_momentum_by_hand():
    # lr 0.1, momentum 0.9, gradients 1, 0.5, -1 on a weight starting at 1:
    # v: -0.1, -0.14, -0.026 -> w: 0.9, 0.76, 0.734;
    # Nesterov w += 0.9 v - 0.1 g: 0.81, 0.634, 0.7106.
    for nesterov, expected in ((False, [0.9, 0.76, 0.734]), (True, [0.81, 0.634, 0.7106])):
        optimizer = create({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": nesterov})
        weight = [np.array([1.0])]
        for gradient, want in zip((1.0, 0.5, -1.0), expected):
            optimizer.step(weight, [np.array([gradient])])
            assert weight[0][0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.8, False), (0.8, True)])
def test_sgd(momentum, nesterov):
    def reference(w, gradients, lr=0.05):
        velocity = 0.0
        for g in gradients:
            velocity = momentum * velocity - lr * g
            w += momentum * velocity - lr * g if nesterov else velocity
        return w

    optimizer = create({"name": "sgd", "learning_rate": 0.05, "momentum": momentum, "nesterov": nesterov})
    assert_matches(run(optimizer), elementwise(reference))
    assert optimizer.iterations == 3


def adam_reference(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=0.0):
    def reference(w, gradients):
        m = v = v_max = 0.0
        for t, g in enumerate(gradients, start=1):
            w -= lr * weight_decay * w
            m = beta_1 * m + (1 - beta_1) * g
            v = beta_2 * v + (1 - beta_2) * g * g
            v_max = max(v_max, v)
            lr_t = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            w -= lr_t * m / (math.sqrt(v_max if amsgrad else v) + epsilon)
        return w

    return reference


def test_adam_first_step_by_hand():
    # lr 0.1, g = 2: m = 0.2, v = 0.004, lr_t = 0.1 * sqrt(0.001) / 0.1 = 0.0316227766...,
    # update = 0.0316227766 * 0.2 / (0.0632455532 + 1e-7) = 0.0999998418861...
    optimizer = create({"name": "adam", "learning_rate": 0.1})
    weight = [np.array([1.0])]
    optimizer.step(weight, [np.array([2.0])])
    assert weight[0][0] == pytest.approx(1 - 0.0999998418861, rel=1e-12)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam(amsgrad):
    optimizer = create(
        {"name": "adam", "learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3, "amsgrad": amsgrad}
    )
    expected = elementwise(adam_reference(0.01, 0.8, 0.95, 1e-3, amsgrad))
    assert_matches(run(optimizer), expected)
    if amsgrad:  # the variant must make a difference on these gradients
        plain = elementwise(adam_reference(0.01, 0.8, 0.95, 1e-3, False))
        assert not np.allclose(expected[0], plain[0], rtol=1e-6)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw(amsgrad):
    optimizer = create({"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": amsgrad})
    assert_matches(run(optimizer), elementwise(adam_reference(0.01, weight_decay=0.1, amsgrad=amsgrad)))


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprop(centered, momentum):
    def reference(w, gradients, lr=0.01, rho=0.8, epsilon=1e-7):
        v = mean = velocity = 0.0
        for g in gradients:
            v = rho * v + (1 - rho) * g * g
            mean = rho * mean + (1 - rho) * g
            step = lr * g / math.sqrt((v - mean * mean if centered else v) + epsilon)
            velocity = momentum * velocity + step
            w -= velocity
        return w

    optimizer = create(
        {"name": "rmsprop", "learning_rate": 0.01, "rho": 0.8, "momentum": momentum, "centered": centered}
    )
    assert_matches(run(optimizer), elementwise(reference))


@pytest.mark.parametrize("initial,epsilon", [(0.1, 1e-7), (0.0, 1e-3)])
def test_adagrad(initial, epsilon):
    def reference(w, gradients, lr=0.05):
        accumulator = initial
        for g in gradients:
            accumulator += g * g
            w -= lr * g / math.sqrt(accumulator + epsilon)
        return w

    optimizer = create(
        {"name": "adagrad", "learning_rate": 0.05, "initial_accumulator_value": initial, "epsilon": epsilon}
    )
    assert_matches(run(optimizer), elementwise(reference))


def test_adagrad_first_step_by_hand():
    # lr 0.1, g = 2 on the default accumulator 0.1: 0.1 + 4 = 4.1, w = 1 - 0.2 / sqrt(4.1 + 1e-7)
    optimizer = create({"name": "adagrad", "learning_rate": 0.1})
    weight = [np.array([1.0])]
    optimizer.step(weight, [np.array([2.0])])
    assert weight[0][0] == pytest.approx(1 - 0.2 / math.sqrt(4.1000001), rel=1e-14)


def nadam_reference(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Keras 3's Nadam (keras/src/optimizers/nadam.py), one weight in plain Python."""

    def reference(w, gradients):
        m = v = 0.0
        u_product = 1.0
        for t, g in enumerate(gradients, start=1):
            u_t = beta_1 * (1 - 0.5 * 0.96**t)
            u_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
            u_product *= u_t
            m = beta_1 * m + (1 - beta_1) * g
            v = beta_2 * v + (1 - beta_2) * g * g
            m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
            v_hat = v / (1 - beta_2**t)
            w -= lr * m_hat / (math.sqrt(v_hat) + epsilon)
        return w

    return reference


@pytest.mark.parametrize("options", [{}, {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3}])
def test_nadam(options):
    optimizer = create({"name": "nadam", "learning_rate": 0.01, **options})
    assert_matches(run(optimizer), elementwise(nadam_reference(0.01, **options)))


def test_nadam_first_step_by_hand():
    # lr 0.1, g = 2: u_1 = 0.9 (1 - 0.48) = 0.468, u_2 = 0.9 (1 - 0.5 * 0.9216) = 0.48528, m = 0.2, v = 0.004,
    # m_hat = 0.48528 * 0.2 / (1 - 0.468 * 0.48528) + 0.532 * 2 / 0.532 = 0.12571... + 2, v_hat = 4
    optimizer = create({"name": "nadam", "learning_rate": 0.1})
    weight = [np.array([1.0])]
    optimizer.step(weight, [np.array([2.0])])
    m_hat = 0.48528 * 0.2 / (1 - 0.468 * 0.48528) + 2
    assert weight[0][0] == pytest.approx(1 - 0.1 * m_hat / (2 + 1e-7), rel=1e-13)


def test_learning_rate_change_takes_effect_on_the_next_step():
    optimizer = create({"name": "sgd", "learning_rate": 0.5})
    weight = [np.array([1.0])]
    optimizer.step(weight, [np.array([1.0])])
    optimizer.learning_rate = 0.25
    optimizer.step(weight, [np.array([1.0])])
    assert weight[0][0] == pytest.approx(1 - 0.5 - 0.25)


def test_clipnorm_rescales_each_weight():
    optimizer = create({"name": "sgd", "learning_rate": 1.0, "clipnorm": 1.0})
    params = [np.zeros(2), np.zeros(2)]
    optimizer.step(params, [np.array([3.0, 4.0]), np.array([0.3, 0.4])])  # norms 5 (clipped) and 0.5 (kept)
    np.testing.assert_allclose(params[0], [-0.6, -0.8])
    np.testing.assert_allclose(params[1], [-0.3, -0.4])


def test_clipvalue():
    optimizer = create({"name": "sgd", "learning_rate": 1.0, "clipvalue": 0.5})
    params = [np.zeros(3)]
    optimizer.step(params, [np.array([3.0, -4.0, 0.25])])
    np.testing.assert_allclose(params[0], [-0.5, 0.5, -0.25])


@pytest.mark.parametrize("name", optimizers.OPTIMIZER_NAMES)
def test_float32_stays_float32_in_place(name):
    optimizer = create(name)
    params = [p.astype(np.float32) for p in START]
    before = [id(p) for p in params]
    for grads in GRADS:
        optimizer.step(params, [g.astype(np.float32) for g in grads])
    assert [id(p) for p in params] == before
    assert all(p.dtype == np.float32 for p in params)
    assert all(v.dtype == np.float32 for v in optimizer.state_dict().values() if isinstance(v, np.ndarray))
    np.testing.assert_allclose(params[0], run(create(name))[0], rtol=1e-5)


# -- exact resume ---------------------------------------------------------------------------------

CONFIGS = [
    "sgd",
    {"name": "sgd", "momentum": 0.9, "nesterov": True},
    {"name": "adam", "amsgrad": True},
    {"name": "adamw", "weight_decay": 0.01},
    {"name": "rmsprop", "centered": True, "momentum": 0.5},
    "adagrad",
    {"name": "nadam", "beta_1": 0.8},
]


def save_and_load(state):
    """The way a checkpoint stores the state: arrays in an .npz, numbers in JSON."""
    arrays = {key: value for key, value in state.items() if isinstance(value, np.ndarray)}
    numbers = json.dumps({key: value for key, value in state.items() if key not in arrays})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer) as stored:
        return {**json.loads(numbers), **{key: stored[key] for key in stored.files}}


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_resume_is_bit_identical(config):
    steps = [[g.astype(np.float32) * (1 + k) for g in grads] for k, grads in enumerate(GRADS * 2)]

    def train(optimizer, params, schedule):
        for k in schedule:
            optimizer.learning_rate = 0.01 / (1 + k)
            optimizer.step(params, [g.copy() for g in steps[k]])
        return params

    straight = train(create(config), [p.astype(np.float32) for p in START], range(6))
    first = create(config)
    halfway = train(first, [p.astype(np.float32) for p in START], range(3))
    resumed = create(config)
    resumed.load_state_dict(save_and_load(first.state_dict()))
    assert resumed.iterations == 3
    finished = train(resumed, [p.copy() for p in halfway], range(3, 6))
    for a, b in zip(straight, finished):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_weights_in_one_flat_buffer_update_as_separate_ones_do(config):
    """Weights packed end to end (as a Model keeps them) are updated as one flat array, in blocks: the same
    bits as weight by weight, with the same state, also for weights longer than a block."""
    rng = np.random.default_rng(0)
    shapes = [(3,), (flat.BLOCK + 5,), (2, 2)]
    start = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    steps = [[rng.standard_normal(shape).astype(np.float32) for shape in shapes] for _ in range(3)]
    separate, packed = [p.copy() for p in start], flat.pack(start)
    assert flat.run_of(packed) is not None and flat.run_of(separate) is None
    one, other = create(config), create(config)
    for grads in steps:
        one.step(separate, [g.copy() for g in grads])
        other.step(packed, [g.copy() for g in grads])
    for a, b in zip(separate, packed):
        np.testing.assert_array_equal(a, b)
    for key, value in one.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)


def test_state_dict_is_a_copy():
    optimizer = create("adam")
    run(optimizer)
    state = optimizer.state_dict()
    state["m.0"][:] = 123.0
    assert not np.any(optimizer.state_dict()["m.0"] == 123.0)


def test_loading_state_of_another_configuration_fails():
    plain = create("adam")
    run(plain)
    with pytest.raises(RunError, match="keeps m, v, v_hat per weight"):
        create({"name": "adam", "amsgrad": True}).load_state_dict(plain.state_dict())
    resumed = create("adam")
    resumed.load_state_dict(plain.state_dict())
    with pytest.raises(RunError, match="shapes"):
        resumed.step([np.zeros(4)], [np.zeros(4)])


# -- spec values ----------------------------------------------------------------------------------

#: Keras' moving-average options, off by default on every optimizer.
EMA = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None}


def test_resolve_fills_keras_defaults():
    assert optimizers.resolve("adam") == {
        "name": "adam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "clipnorm": None,
        "clipvalue": None,
        **EMA,
    }
    assert optimizers.resolve({"name": "sgd", "momentum": 0.9}) == {
        "name": "sgd",
        "learning_rate": 0.01,
        "momentum": 0.9,
        "nesterov": False,
        "clipnorm": None,
        "clipvalue": None,
        **EMA,
    }
    assert optimizers.resolve("adamw")["weight_decay"] == 0.004
    assert optimizers.resolve("rmsprop") == {
        "name": "rmsprop",
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
        "clipnorm": None,
        "clipvalue": None,
        **EMA,
    }
    assert optimizers.resolve("adagrad") == {
        "name": "adagrad",
        "learning_rate": 0.001,
        "initial_accumulator_value": 0.1,
        "epsilon": 1e-7,
        "clipnorm": None,
        "clipvalue": None,
        **EMA,
    }
    assert optimizers.resolve("nadam") == {
        "name": "nadam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "clipnorm": None,
        "clipvalue": None,
        **EMA,
    }


def test_resolve_agrees_with_the_schema_defaults():
    from specforge.base.defaults import with_defaults

    for name in optimizers.OPTIMIZER_NAMES:
        assert with_defaults({"name": name}, optimizers.OPTIMIZER_SCHEMA) == optimizers.resolve(name)


def test_schema_rejects_options_of_another_optimizer():
    from jsonschema import Draft7Validator

    validator = Draft7Validator(optimizers.OPTIMIZER_SCHEMA)
    assert validator.is_valid({"name": "adam", "learning_rate": 0.01, "amsgrad": True})
    errors = list(validator.iter_errors({"name": "sgd", "beta_1": 0.9}))
    assert [e.validator for e in errors] == ["additionalProperties"] and "beta_1" in errors[0].message
    assert not validator.is_valid("adadelta")
