"""A float32 training step stays in float32: for every layer kind's examples (merges and fused activations
included), the output, every array the forward keeps for the backward, the input gradients, the parameter
gradients and the new state. The optimizers, activations and losses have their own float32 tests."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CASES, FUSING_CASES, MERGE_CASES, example_input, float_arrays, make_layer

from specforge.graph.plan import plan_steps
from specforge.layers import REGISTRY


def step_dtypes(step, params: dict, x) -> set[np.dtype]:
    """The dtypes of every float array a training forward and backward of ``step`` makes or keeps."""
    y, cache = step.forward(params, x, True, np.random.default_rng(0))
    dx, grads = step.backward(params, cache, np.ones_like(y))
    return {array.dtype for array in float_arrays([y, cache, dx, grads, step.new_state(cache)])}


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_layer_step_stays_float32(kind, config, shape):
    layer, params = make_layer(kind, config, shape, dtype=np.float32)
    (step,) = plan_steps([layer])
    assert step_dtypes(step, params, example_input(kind, shape, 3, 0, np.float32)) == {np.dtype(np.float32)}


@pytest.mark.parametrize("kind,config,shape", FUSING_CASES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softmax"])
def test_fused_step_stays_float32(kind, config, shape, activation):
    layer, params = make_layer(kind, config, shape, dtype=np.float32)
    (step,) = plan_steps([layer, REGISTRY["Activation"].from_options({"activation": activation})])
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    assert step_dtypes(step, params, x) == {np.dtype(np.float32)}


@pytest.mark.parametrize("kind,config,shapes", MERGE_CASES)
def test_merge_step_stays_float32(kind, config, shapes):
    layer, params = make_layer(kind, config, shapes, dtype=np.float32)
    (step,) = plan_steps([layer], [(-1,) * len(shapes)])
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, *shape)).astype(np.float32) for shape in shapes]
    assert step_dtypes(step, params, xs) == {np.dtype(np.float32)}
