"""Blocks: named, parameterised groups of layers expanded into the flat graph with hierarchical names."""

from __future__ import annotations

import copy

import pytest

from specforge import api
from specforge.base.errors import SpecforgeError
from specforge.spec import spec_from_dict

RESIDUAL = {
    "params": {"filters": {"type": "integer"}, "strides": {"type": "integer", "default": 1}},
    "layers": [
        {
            "type": "Conv2D",
            "name": "conv_a",
            "filters": "$filters",
            "kernel_size": 3,
            "strides": "$strides",
            "padding": "same",
            "activation": "relu",
        },
        {"type": "Conv2D", "name": "conv_b", "filters": "$filters", "kernel_size": 3, "padding": "same"},
        {
            "type": "Conv2D",
            "name": "shortcut",
            "inputs": "input",
            "filters": "$filters",
            "kernel_size": 1,
            "strides": "$strides",
        },
        {"type": "Add", "inputs": ["conv_b", "shortcut"]},
        {"type": "ReLU"},
    ],
}
STAGE = {
    "params": {"filters": {"type": "integer"}},
    "layers": [
        {"block": "residual", "filters": "$filters", "strides": 2},
        {"block": "residual", "filters": "$filters", "repeat": 2},
    ],
}


def spec(layers, blocks=None):
    data = {
        "version": 1,
        "name": "blocks",
        "data": {"source": "npz", "path": "x.npz", "num_classes": 3, "preprocessing": {"labels": "sparse"}},
        "blocks": copy.deepcopy(blocks if blocks is not None else {"residual": RESIDUAL, "stage": STAGE}),
        "model": {"input_shape": [8, 8, 1], "layers": layers},
        "compile": {"loss": "sparse_categorical_crossentropy"},
    }
    return spec_from_dict(data)


HEAD = [{"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 3, "activation": "softmax"}]


def test_blocks_expand_into_hierarchical_names():
    graph = api.build_graph(
        spec(
            [
                {"type": "Conv2D", "name": "stem", "filters": 4, "kernel_size": 3, "padding": "same"},
                {"block": "stage", "name": "stage2", "filters": 6},
                *HEAD,
            ]
        )
    )
    names = [node.layer.name for node in graph.nodes]
    assert names[:4] == ["stem", "stage2/residual/conv_a", "stage2/residual/conv_a_relu", "stage2/residual/conv_b"]
    assert "stage2/residual_1/conv_a" in names and "stage2/residual_2/re_lu" in names
    index = {name: position for position, name in enumerate(names)}
    shortcut = graph.nodes[index["stage2/residual/shortcut"]]
    assert shortcut.inputs == (index["stem"],) and shortcut.output_shape == (4, 4, 6)
    assert graph.nodes[index["stage2/residual_1/conv_a"]].inputs == (index["stage2/residual/re_lu"],)
    assert graph.nodes[index["global_average_pooling2d"]].inputs == (index["stage2/residual_2/re_lu"],)
    assert graph.nodes[index["stage2/residual_2/conv_a"]].layer.config["strides"] == 1


def test_a_block_use_without_name_counts_like_keras_and_repeat_chains_the_copies():
    graph = api.build_graph(
        spec([{"block": "residual", "filters": 2, "repeat": 2}, {"block": "residual", "filters": 2}, *HEAD])
    )
    sources = {node.source.split("/")[0] for node in graph.nodes}
    assert {"residual", "residual_1", "residual_2"} <= sources


def errors(layers, blocks=None) -> list[str]:
    with pytest.raises(SpecforgeError) as raised:
        api.build_graph(spec(layers, blocks))
    return [problem.format().split(": error: ", 1)[1] for problem in raised.value.problems]


def test_a_mistake_in_a_definition_is_reported_there():
    broken = copy.deepcopy(RESIDUAL)
    broken["layers"][1]["kernel_size"] = 0
    assert errors([{"block": "residual", "filters": 2}, *HEAD], {"residual": broken}) == [
        (
            "blocks.residual.layers[1].kernel_size: expected an integer >= 1 or a list of 2 integers or a block "
            "parameter like $filters, got 0"
        )
    ]


def test_errors_inside_a_block_name_the_use_and_the_definition():
    broken = copy.deepcopy(RESIDUAL)
    broken["layers"][3]["inputs"] = ["conv_c", "shortcut"]
    assert errors([{"block": "residual", "filters": 0}, *HEAD], {"residual": broken}) == [
        (
            "model.layers[0].filters: argument 'filters' of block 'residual' does not fit "
            "blocks.residual.layers[0].filters (line 1): must be >= 1, got 0"
        ),
        (
            "model.layers[0]: in block 'residual' at line 1 (blocks.residual.layers[3].inputs[0]): no layer is named "
            "'conv_c'; did you mean 'conv_b'?"
        ),
    ]


@pytest.mark.parametrize(
    "use,message",
    [
        ({"block": "residual"}, "model.layers[0]: block 'residual' needs 'filters'; add filters: ..."),
        (
            {"block": "residual", "filters": 2, "filtres": 3},
            "model.layers[0].filtres: block 'residual' has no parameter 'filtres'; did you mean 'filters'?",
        ),
        (
            {"block": "residual", "filters": "many"},
            "model.layers[0].filters: argument 'filters' of block 'residual': expected an integer, got 'many'",
        ),
        (
            {"block": "resdual", "filters": 2},
            "model.layers[0].block: no block is named 'resdual'; did you mean 'residual'?",
        ),
    ],
)
def test_block_arguments_missing_unknown_or_of_the_wrong_type(use, message):
    assert errors([use, *HEAD]) == [message]


def test_a_block_that_uses_itself():
    loop = {"params": {}, "layers": [{"type": "ReLU"}, {"block": "loop"}]}
    assert errors([{"block": "loop"}, *HEAD], {"loop": loop}) == [
        (
            "model.layers[0]: in block 'loop' at line 1 (blocks.loop.layers[1].block): block 'loop' uses itself "
            "('loop' -> 'loop'); a block cannot contain itself"
        )
    ]


def test_a_shape_error_inside_a_nested_block_is_reported_at_the_use():
    narrow = copy.deepcopy(RESIDUAL)
    del narrow["layers"][2]["strides"]
    assert errors([{"block": "stage", "filters": 4}, *HEAD], {"residual": narrow, "stage": STAGE}) == [
        (
            "model.layers[0]: in block 'stage' > 'residual' at line 1 (blocks.residual.layers[3]): Add got (4, 4, 4) from "
            "'stage/residual/conv_b' and (8, 8, 4) from 'stage/residual/shortcut'; give the shortcut a 1x1 Conv2D with "
            "strides 2"
        )
    ]


def test_the_summary_indents_layers_under_their_block_instances():
    from specforge.graph.summary import summary_lines

    graph = api.build_graph(
        spec(
            [
                {"type": "Conv2D", "name": "stem", "filters": 2, "kernel_size": 3, "padding": "same"},
                {"block": "stage", "name": "stage2", "filters": 2},
                *HEAD,
            ]
        )
    )
    lines = summary_lines(graph.summary())
    names = [line[0] for line in lines]
    assert names[:4] == ["stem (Conv2D)", "stage2 (stage)", "  residual (residual)", "    conv_a (Conv2D)"]
    assert "  residual_2 (residual)" in names and names[-1] == "dense (Dense)"
    by_name = {line[0].strip(): line for line in lines}
    assert by_name["stage2 (stage)"][2] == f"{sum(row.params for row in graph.summary() if row.blocks):,}"
    add = next(line for line in lines if line[0] == "    add (Add)")
    assert add[4] == "conv_b, shortcut"
    first_conv = lines[3]
    assert first_conv[4] == "stem"
