"""The seed tutorial's model: shapes, parameter counts and FLOPs worked out by hand."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specforge import api

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "specs" / "mnist.yaml"


def test_seed_shapes_params_and_flops():
    _, graph = api.validate(SEED)
    rows = graph.summary()
    assert [row.type for row in rows] == ["Conv2D", "Conv2D", "Flatten", "Dense"]
    assert [row.output_shape for row in rows] == [(26, 26, 64), (24, 24, 32), (18432,), (10,)]
    # 3*3*1*64 + 64; 3*3*64*32 + 32; 0; 18432*10 + 10
    assert [row.params for row in rows] == [640, 18_464, 0, 184_330]
    assert graph.total_params == 203_434 == graph.trainable_params
    # 2 FLOPs per multiply-add: 26*26*64*9*2, 24*24*32*576*2, 18432*10*2
    assert [row.flops for row in rows] == [778_752, 21_233_664, 0, 368_640]
    assert graph.final_activation == "softmax"


def test_seed_resolved_config_is_the_tutorial():
    spec, _ = api.validate(SEED)
    config = spec.config
    assert config["data"]["source"] == "mnist"
    assert config["data"]["preprocessing"]["rescale"] == 1.0
    assert config["data"]["preprocessing"]["labels"] == "one_hot"
    assert config["compile"]["loss"] == "categorical_crossentropy"
    # the shorthand `optimizer: adam` resolved to Keras' Adam defaults
    assert config["compile"]["optimizer"] == {
        "name": "adam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "clipnorm": None,
        "clipvalue": None,
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
    }
    assert [metric["name"] for metric in config["compile"]["metrics"]] == ["accuracy"]
    assert (config["fit"]["epochs"], config["fit"]["batch_size"], config["fit"]["validation"]) == (3, 32, "test")
    conv = config["model"]["layers"][0]
    # defaults filled in from the schema (Keras' defaults)
    assert (conv["strides"], conv["padding"], conv["dilation_rate"], conv["use_bias"]) == (1, "valid", 1, True)
    assert conv["kernel_initializer"] == "glorot_uniform"


def test_cli_validate_prints_the_summary():
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "validate", str(SEED)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    for text in ("(26, 26, 64)", "(24, 24, 32)", "(18432,)", "(10,)", "203,434", "184,330", "22,381,056"):
        assert text in result.stdout


def test_cli_validate_json():
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "validate", str(SEED), "--json"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    assert summary["valid"] is True
    assert summary["total_params"] == 203_434
    assert [layer["output_shape"] for layer in summary["layers"]] == [[26, 26, 64], [24, 24, 32], [18432], [10]]


def test_validate_imports_neither_onnx_nor_onnxruntime():
    probe = (
        "import sys; from specforge import api; api.validate(sys.argv[1]); "
        "print(','.join(m for m in ('onnx', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(SEED)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_every_example_spec_validates():
    outputs = {
        "breast_cancer": (2,),
        "breast_cancer_two_inputs": (2,),
        "diabetes": (1,),
        "mnist_greater": (2,),
        "sms_bag_of_embeddings": (2,),
        "sms_conv1d": (2,),
        "sms_transformer": (2,),
        "sms_text_and_table": (2,),
        "sms_bilstm": (2,),
    }
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        _spec, graph = api.validate(path)
        assert graph.output_shape == outputs.get(path.stem, (10,)), path


def test_a_piped_summary_shows_every_layer_and_kind_whole():
    """Piped output is 80 columns wide by default: the table is printed at its own width instead of cutting
    cells short (``(BatchNormaliz…``)."""
    from specforge.graph.summary import summary_lines

    spec = ROOT / "specs" / "resnet.yaml"
    environment = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "validate", str(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _, graph = api.validate(spec)
    cells = [cell for line in summary_lines(graph.summary()) for cell in line[:4]]
    assert "(BatchNormalization)" in result.stdout and "…" not in result.stdout
    for cell in cells:
        assert cell in result.stdout


@pytest.mark.parametrize(
    "count, text", [(608, "608 FLOP"), (1_000, "1.0 kFLOP"), (22_381_056, "22.4 MFLOP"), (3.2e9, "3.2 GFLOP")]
)
def test_counts_are_written_with_a_space_before_the_unit(count, text):
    from specforge.graph.summary import human

    assert human(count, "FLOP") == text
