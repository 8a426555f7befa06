import numpy as np
import pytest
from helpers import numerical_gradient

from specforge.api import build_graph
from specforge.base.errors import RunError
from specforge.graph.model import Model
from specforge.ops import flat
from specforge.options import losses, optimizers
from specforge.spec import spec_from_dict


def make_spec(layers, input_shape, loss="categorical_crossentropy", classes=3):
    return spec_from_dict(
        {
            "version": 1,
            "name": "tiny",
            "data": {"source": "npz", "path": "unused.npz", "num_classes": classes},
            "model": {"input_shape": input_shape, "layers": layers},
            "compile": {"optimizer": "adam", "loss": loss},
        }
    )


CONV_LAYERS = [
    {"type": "Conv2D", "filters": 3, "kernel_size": [3, 2], "strides": [1, 2], "padding": "same", "activation": "tanh"},
    {"type": "BatchNormalization"},
    {"type": "Flatten"},
    {"type": "Dense", "units": 3, "activation": "softmax"},
]


def conv_model(dtype=np.float64, seed=0):
    graph = build_graph(make_spec(CONV_LAYERS, [5, 4, 2]))
    model = Model.initialize(graph, np.random.default_rng(seed))
    for params in model.params:
        for name in params:
            params[name] = params[name].astype(dtype)
    return Model(graph, model.params)


def batch(dtype=np.float64, n=6, shape=(5, 4, 2), classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype(dtype), np.eye(classes, dtype=dtype)[rng.integers(0, classes, n)]


def unfused_loss(model, x, y, loss):
    """The loss through the full forward (softmax probabilities, then cross-entropy on them)."""
    saved = [{name: value.copy() for name, value in params.items()} for params in model.params]
    value = loss.value(model.forward(x, training=True), y, from_logits=False)
    for params, before in zip(model.params, saved):  # undo BatchNormalization's moving statistics
        for name, array in before.items():
            params[name][...] = array
    return value


def test_fused_gradient_equals_finite_differences_of_the_unfused_loss():
    model = conv_model()
    x, y = batch()
    loss = losses.create("categorical_crossentropy")
    assert model.fuses(loss)
    value, outputs, grads, _ = model.gradients(x, y, loss)
    assert value == pytest.approx(unfused_loss(model, x, y, loss), rel=1e-9)
    np.testing.assert_allclose(outputs, model.forward(x, training=True), rtol=1e-12)
    for param, grad in zip(model.trainable_params(), grads):
        assert grad.shape == param.shape
        numeric = numerical_gradient(lambda: unfused_loss(model, x, y, loss), param)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_trainable_parameters_are_one_flat_buffer():
    """So that the optimizer updates every weight at once (specforge.ops.flat)."""
    model = conv_model(np.float32)
    run = flat.run_of(model.trainable_params())
    assert run is not None and run.size == sum(p.size for p in model.trainable_params())


def test_trainable_parameters_leave_out_moving_statistics_in_graph_order():
    model = conv_model()
    names = [
        (index, name)
        for index, params in enumerate(model.params)
        for name in params
        if name not in ("moving_mean", "moving_variance")
    ]
    assert [p.shape for p in model.trainable_params()] == [model.params[i][n].shape for i, n in names]
    assert sum(p.size for p in model.trainable_params()) == model.graph.trainable_params


def test_loss_without_a_fused_activation_runs_every_node():
    graph = build_graph(make_spec([{"type": "Dense", "units": 2}], [3], loss="mean_squared_error", classes=2))
    model = Model.initialize(graph, np.random.default_rng(0))
    loss = losses.create("mean_squared_error")
    assert not model.fuses(loss)
    x = np.ones((4, 3), np.float32)
    y = np.zeros((4, 2), np.float32)
    value, outputs, grads, _ = model.gradients(x, y, loss)
    expected = x @ model.params[0]["kernel"] + model.params[0]["bias"]
    np.testing.assert_allclose(outputs, expected, rtol=1e-6)
    assert value == pytest.approx(float(np.mean(expected**2)), rel=1e-5)
    np.testing.assert_allclose(grads[0], x.T @ (2 * expected / expected.size), rtol=1e-5)


def test_train_step_lowers_the_loss_on_a_fixed_batch():
    model = conv_model(np.float32)
    x, y = batch(np.float32, n=12)
    loss = losses.create("categorical_crossentropy")
    optimizer = optimizers.create(optimizers.resolve({"name": "adam", "learning_rate": 0.01}))
    first, _ = model.train_step(x, y, loss, optimizer)
    for _ in range(30):
        last, _ = model.train_step(x, y, loss, optimizer)
    assert last < 0.5 * first
    assert all(p.dtype == np.float32 for params in model.params for p in params.values())


def test_train_step_leaves_the_weights_alone_when_the_loss_is_not_finite():
    model = conv_model(np.float32)
    x, y = batch(np.float32)
    x[0, 0, 0, 0] = np.nan
    before = model.get_weights()
    value, _ = model.train_step(
        x, y, losses.create("categorical_crossentropy"), optimizers.create(optimizers.resolve("sgd"))
    )
    assert np.isnan(value)
    for old, new in zip(before, model.params):
        for name in old:
            np.testing.assert_array_equal(old[name], new[name])


def test_forward_until_gives_the_logits_of_the_final_softmax():
    model = conv_model()
    x, _ = batch()
    logits = model.forward(x, until=len(model.graph.nodes) - 1)
    np.testing.assert_allclose(losses.softmax(logits), model.forward(x), rtol=1e-12)
    np.testing.assert_array_equal(model.forward(x, until=0), x)


def test_predict_in_batches_equals_one_forward():
    model = conv_model(np.float32)
    x, _ = batch(np.float32, n=11)
    np.testing.assert_allclose(model.predict(x, batch_size=4), model.forward(x), rtol=1e-6)
    assert model.predict(x[:0]).shape == (0, 3)


def test_weights_round_trip_through_npz(tmp_path):
    model = conv_model(np.float32, seed=0)
    path = model.save_weights(tmp_path / "weights.npz")
    with np.load(path) as data:
        assert set(data.files) == {
            f"{node.layer.name}/{name}" for node, params in zip(model.graph.nodes, model.params) for name in params
        }
        assert "conv2d/kernel" in data.files and "batch_normalization/moving_variance" in data.files
    other = conv_model(np.float32, seed=5)
    other.load_weights(path)
    for a, b in zip(model.params, other.params):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_weights_of_another_model_are_refused(tmp_path):
    conv_model(np.float32).save_weights(tmp_path / "weights.npz")
    graph = build_graph(
        make_spec([{"type": "Flatten"}, {"type": "Dense", "units": 3, "activation": "softmax"}], [5, 4, 2])
    )
    model = Model.initialize(graph, np.random.default_rng(0))
    with pytest.raises(RunError, match="do not fit this model"):
        model.load_weights(tmp_path / "weights.npz")
    with pytest.raises(RunError, match="does not exist"):
        model.load_weights(tmp_path / "missing.npz")


def test_train_step_applies_the_moving_statistics_the_gradients_return():
    model = conv_model(np.float32)
    x, y = batch(np.float32)
    loss = losses.create("categorical_crossentropy")
    before = model.get_weights()
    _, _, _, state = model.gradients(x, y, loss)
    assert [index for index, _ in state] and all(
        set(values) == {"moving_mean", "moving_variance"} for _, values in state
    )
    for old, new in zip(before, model.params):
        for name in old:
            np.testing.assert_array_equal(old[name], new[name])
    model.train_step(x, y, loss, optimizers.create(optimizers.resolve("sgd")))
    for index, values in state:
        for name, value in values.items():
            np.testing.assert_array_equal(model.params[index][name], value)
