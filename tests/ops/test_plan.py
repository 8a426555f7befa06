"""Fused activations: which layer and activation pairs fuse (tests/layers/test_generic.py checks that every
fusing kind's fused step computes exactly what the two nodes compute one after the other)."""

from __future__ import annotations

import numpy as np
import pytest

from specforge.graph.plan import plan_steps
from specforge.layers import REGISTRY
from specforge.options.activations import ACTIVATIONS, Relu


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_output_suffices_means_the_output_gives_the_gradient(name):
    function = ACTIVATIONS[name]()
    z = np.random.default_rng(0).normal(scale=2, size=(3, 5))
    y, dy = function.forward(z), np.random.default_rng(1).normal(size=(3, 5))
    from_output = np.allclose(function.backward(y, y, dy), function.backward(z, y, dy), rtol=1e-12, atol=1e-12)
    assert function.output_suffices == from_output


def test_relu_with_a_threshold_needs_its_input():
    assert Relu(max_value=6.0, negative_slope=0.1).output_suffices
    assert not Relu(threshold=0.5).output_suffices


def layers(*specs):
    return [REGISTRY[kind].from_options(config) for kind, config in specs]


def test_plan_pairs_a_layer_with_the_activation_it_can_take():
    chain = layers(
        ("Conv2D", {"filters": 2, "kernel_size": 2}),
        ("Activation", {"activation": "relu"}),
        ("Conv2D", {"filters": 2, "kernel_size": 2}),
        ("Activation", {"activation": "gelu"}),
        ("Flatten", {}),
        ("ReLU", {}),
        ("Dense", {"units": 3}),
        ("ReLU", {"threshold": 0.5}),
        ("Dense", {"units": 2}),
        ("Softmax", {}),
    )
    steps = plan_steps(chain)
    assert [(step.index, step.nodes) for step in steps] == [
        (0, 2),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 1),
        (7, 1),
        (8, 2),
    ]
    assert steps[0].activation.name == "relu" and steps[-1].activation.name == "softmax"
