"""The bound on block expansion: sizes multiplied through the block call graph before anything is expanded,
the use that exceeds them refused at its line, in a spec, a --set option and a sweep's range."""

from __future__ import annotations

import copy
import json

import pytest

from specforge import api
from specforge.base.errors import SpecError
from specforge.spec import spec_from_dict
from specforge.spec.bounds import MAX_DEPTH, MAX_LAYERS, expansion_problems
from specforge.spec.reader import parse_text
from specforge.sweep.space import Parameter
from tests.spec.test_invalid_specs import REPO, error_lines, run_cli

HEAD = [{"type": "Dense", "units": 10, "activation": "softmax"}]


def document(layers: list, blocks: dict) -> dict:
    return {
        "version": 1,
        "name": "bounds",
        "blocks": blocks,
        "model": {"input_shape": [4], "layers": layers},
        "compile": {"loss": "categorical_crossentropy"},
    }


def nested(levels: int) -> dict:
    """``levels`` blocks, each using the next; the last holds one ReLU."""
    blocks = {f"b{k}": {"layers": [{"block": f"b{k + 1}"}]} for k in range(1, levels)}
    blocks[f"b{levels}"] = {"layers": [{"type": "ReLU"}]}
    return document([{"block": "b1"}, *HEAD], blocks)


def doubling(levels: int) -> dict:
    """Block b0 is one ReLU; each b{k} uses b{k-1} twice, so b{levels} is 2**levels layers."""
    blocks = {"b0": {"layers": [{"type": "ReLU"}]}}
    blocks.update({f"b{k}": {"layers": [{"block": f"b{k - 1}"}, {"block": f"b{k - 1}"}]} for k in range(1, levels + 1)})
    return document([{"block": f"b{levels}"}, *HEAD], blocks)


def problems(data: dict) -> list[str]:
    doc = parse_text(json.dumps(data), "<spec>", as_json=True)
    return [problem.format() for problem in expansion_problems(doc.data, doc.locate)]


def messages(data: dict) -> list[str]:
    with pytest.raises(SpecError) as raised:
        api.build_graph(spec_from_dict(data))
    return [f"{problem.location.path}: {problem.message}" for problem in raised.value.problems]


def test_two_thousand_nested_blocks_are_refused_at_the_first_use_too_deep_without_recursion():
    assert messages(nested(2000)) == [
        (
            f"blocks.b{MAX_DEPTH}.layers[0].block: block 'b{MAX_DEPTH + 1}' is nested {MAX_DEPTH + 1} deep here "
            f"(model > 'b1' > 'b2' > 'b3' > ... {MAX_DEPTH + 1 - 6} more > 'b{MAX_DEPTH - 1}' > 'b{MAX_DEPTH}' > "
            f"'b{MAX_DEPTH + 1}'); blocks nest at most {MAX_DEPTH} deep: use fewer levels of blocks"
        )
    ]


def test_blocks_nested_as_deep_as_allowed_expand():
    graph = api.build_graph(spec_from_dict(nested(MAX_DEPTH)))
    assert graph.nodes[0].layer.name == "/".join(f"b{k}" for k in range(1, MAX_DEPTH + 1)) + "/re_lu"


def test_forty_blocks_each_using_the_previous_twice_are_refused_where_a_block_first_grows_too_large():
    found = messages(doubling(40))
    assert len(found) == 2 and "nested 33 deep" in found[0]
    first_too_large = MAX_LAYERS.bit_length()  # the first b{k} with 2**k > MAX_LAYERS
    inner = 2 ** (first_too_large - 1)
    assert found[1] == (
        f"blocks.b{first_too_large}.layers[1]: this use of block 'b{first_too_large - 1}' "
        f"({inner:,} layers) takes block 'b{first_too_large}' to {2 * inner:,} layers, more than "
        f"the {MAX_LAYERS:,} a model may have; use a smaller repeat, or fewer or smaller blocks"
    )


def test_the_count_needs_no_expansion_and_stops_exactly_at_the_bound():
    blocks = {"one": {"layers": [{"type": "ReLU"}]}}
    fits = document([{"block": "one", "repeat": MAX_LAYERS - 1}, *HEAD], blocks)
    assert problems(fits) == []
    over = copy.deepcopy(fits)
    over["model"]["layers"][0]["repeat"] = MAX_LAYERS
    limit = f"more than the {MAX_LAYERS:,} a model may have; use a smaller repeat, or fewer or smaller blocks"
    assert [line.split(": error: ")[1] for line in problems(over)] == [
        f"model.layers[1]: this layer takes the model to {MAX_LAYERS + 1:,} layers, {limit}"
    ]
    over["model"]["layers"][0]["repeat"] = MAX_LAYERS + 1
    assert [line.split(": error: ")[1] for line in problems(over)] == [
        (
            f"model.layers[0].repeat: this use of block 'one' ({MAX_LAYERS + 1:,} x 1 layers) takes the model to "
            f"{MAX_LAYERS + 1:,} layers, {limit}"
        )
    ]


def test_a_block_that_uses_itself_is_left_to_the_expansion_to_report():
    looped = document(
        [{"block": "a"}, *HEAD],
        {"a": {"layers": [{"type": "ReLU"}, {"block": "b"}]}, "b": {"layers": [{"block": "a", "repeat": 3}]}},
    )
    assert problems(looped) == []
    assert messages(looped)[0].endswith("block 'a' uses itself ('a' -> 'b' -> 'a'); a block cannot contain itself")


@pytest.mark.parametrize("repeat", [1_000_000_000, 1_000_000])
def test_a_huge_repeat_in_a_file_exits_2_at_its_line(repeat: int):
    name = "block_repeat_billion.yaml" if repeat == 1_000_000_000 else "block_repeat_million.yaml"
    result = run_cli("validate", f"tests/spec/invalid/{name}")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"tests/spec/invalid/{name}:17:45: error: model.layers[1].repeat: ")
    assert f"({repeat:,} x 4 layers)" in result.stderr and "Traceback" not in result.stderr


def test_a_huge_repeat_set_on_the_command_line_is_refused_at_the_option():
    result = run_cli("validate", "specs/residual.yaml", "--set", "model.layers[1].repeat=1000000000")
    assert (result.returncode, result.stdout, "Traceback" in result.stderr) == (2, "", False)
    assert result.stderr == (
        "--set model.layers[1].repeat=1000000000: error: model.layers[1].repeat: this use of "
        "block 'stage' (1,000,000,000 x 16 layers) takes the model to 16,000,000,001 layers, "
        f"more than the {MAX_LAYERS:,} a model may have; use a smaller repeat, or fewer or "
        "smaller blocks\n"
    )


def test_a_sweep_range_over_a_repeat_is_checked_at_the_largest_value_it_draws(tmp_path):
    text = (REPO / "specs" / "residual.yaml").read_text(encoding="utf-8")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        text + "sweep:\n  parameters:\n    model.layers[1].repeat: {int: [1, 1000000000]}\n", encoding="utf-8"
    )
    [line] = error_lines(spec)
    assert line.startswith(f"{spec}:")
    assert (
        ": error: sweep.parameters.model.layers[1].repeat: int value 1000000000 does not fit "
        "model.layers[1].repeat: this use of block 'stage' (1,000,000,000 x 16 layers)"
    ) in line
    spec.write_text(text + "sweep:\n  parameters:\n    model.layers[1].repeat: {int: [1, 3]}\n", encoding="utf-8")
    api.validate(spec)


def test_an_int_range_is_checked_at_the_largest_value_its_steps_reach():
    assert Parameter("model.layers[1].repeat", "int", (1, 1000), step=100).checked_values() == [1, 901]
    assert Parameter("fit.epochs", "int", (2, 2)).checked_values() == [2]


@pytest.mark.parametrize(
    "blocks",
    [{}, {"a": {"layers": [{"type": "ReLU"}, {"block": "a", "repeat": 10**12}]}}],
    ids=["unknown block", "block using itself"],
)
def test_each_copy_counts_as_a_layer_even_where_its_block_cannot_be_expanded(blocks: dict):
    use = {"block": "nowhere", "repeat": 10**12} if not blocks else {"block": "a"}
    found = messages(document([use, *HEAD], blocks))
    assert len(found) == 1 and "(1,000,000,000,000 x 1 layers)" in found[0]
