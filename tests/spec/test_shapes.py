"""Output shapes worked out by hand with O = floor((W - K_eff + 2P) / S) + 1, K_eff = D(K - 1) + 1."""

import pytest

from specforge.graph.dag import infer_graph
from specforge.spec import spec_from_dict


def graph_of(input_shape, *layers):
    spec = spec_from_dict(
        {
            "version": 1,
            "name": "shapes",
            "model": {"input_shape": list(input_shape), "layers": list(layers)},
            "compile": {"loss": "mean_squared_error"},
        }
    )
    return infer_graph(spec)


CASES = [
    # (input shape, layer, expected output shape, how)
    ((28, 28, 1), {"type": "Conv2D", "filters": 64, "kernel_size": 3}, (26, 26, 64), "(28-3+0)/1+1"),
    ((28, 28, 1), {"type": "Conv2D", "filters": 8, "kernel_size": 3, "strides": 2}, (13, 13, 8), "floor(25/2)+1"),
    (
        (28, 28, 1),
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
        (14, 14, 8),
        "ceil(28/2)",
    ),
    (
        (27, 27, 1),
        {"type": "Conv2D", "filters": 8, "kernel_size": 4, "strides": 2, "padding": "same"},
        (14, 14, 8),
        "ceil(27/2)",
    ),
    ((28, 28, 1), {"type": "Conv2D", "filters": 8, "kernel_size": 5, "padding": "same"}, (28, 28, 8), "ceil(28/1)"),
    (
        (28, 28, 1),
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "dilation_rate": 2},
        (24, 24, 8),
        "K_eff = 2*(3-1)+1 = 5: 28-5+1",
    ),
    (
        (28, 20, 1),
        {"type": "Conv2D", "filters": 4, "kernel_size": [3, 5], "strides": [2, 1]},
        (13, 16, 4),
        "h floor(25/2)+1, w 20-5+1",
    ),
    ((28, 28, 3), {"type": "DepthwiseConv2D", "kernel_size": 3, "depth_multiplier": 2}, (26, 26, 6), "3*2 channels"),
    ((26, 26, 64), {"type": "MaxPooling2D"}, (13, 13, 64), "pool 2, stride 2"),
    ((26, 26, 64), {"type": "MaxPooling2D", "pool_size": 3, "strides": 2}, (12, 12, 64), "floor(23/2)+1"),
    ((27, 27, 4), {"type": "AveragePooling2D", "padding": "same"}, (14, 14, 4), "ceil(27/2)"),
    ((7, 5, 16), {"type": "GlobalAveragePooling2D"}, (16,), "one value per channel"),
    ((7, 5, 16), {"type": "GlobalMaxPooling2D", "keepdims": True}, (1, 1, 16), "keepdims"),
    ((28, 28, 1), {"type": "ZeroPadding2D", "padding": [[1, 2], [3, 4]]}, (31, 35, 1), "28+1+2, 28+3+4"),
    ((24, 24, 32), {"type": "Flatten"}, (18432,), "24*24*32"),
    ((784,), {"type": "Reshape", "target_shape": [28, 28, 1]}, (28, 28, 1), "784 = 28*28"),
    ((26, 26, 64), {"type": "Reshape", "target_shape": [-1, 16]}, (2704, 16), "43264/16"),
    ((18432,), {"type": "Dense", "units": 10, "activation": "softmax"}, (10,), "units"),
]


@pytest.mark.parametrize("input_shape, layer, expected, how", CASES, ids=[case[3] for case in CASES])
def test_hand_worked_shape(input_shape, layer, expected, how):
    assert graph_of(input_shape, layer).output_shape == expected


def test_activation_option_becomes_its_own_node_but_one_summary_row():
    graph = graph_of(
        (28, 28, 1), {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"}, {"type": "Flatten"}
    )
    assert [node.layer.type for node in graph.nodes] == ["Conv2D", "Activation", "Flatten"]
    assert [row.name for row in graph.summary()] == ["conv2d", "flatten"]


def test_layer_names_count_per_kind_like_keras():
    graph = graph_of(
        (8, 8, 1),
        {"type": "Conv2D", "filters": 2, "kernel_size": 3},
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "name": "second"},
        {"type": "Conv2D", "filters": 2, "kernel_size": 1},
        {"type": "Flatten"},
    )
    assert [row.name for row in graph.summary()] == ["conv2d", "second", "conv2d_1", "flatten"]
