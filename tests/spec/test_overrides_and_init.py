"""`--set` overrides and `specforge init` templates."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REFERENCE_SPECS

from specforge import api
from specforge.base.errors import SpecError
from specforge.spec import parse_override
from specforge.spec.schema import SCHEMA_FILE
from specforge.spec.starter import STARTERS_DIR, TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "specs" / "mnist.yaml"


def test_parse_override_paths_and_yaml_values():
    assert parse_override("fit.epochs=1") == (("fit", "epochs"), 1)
    assert parse_override("model.layers[0].kernel_size=[3, 5]") == (("model", "layers", 0, "kernel_size"), [3, 5])
    assert parse_override("compile.optimizer.learning_rate=5e-4") == (("compile", "optimizer", "learning_rate"), 0.0005)
    with pytest.raises(SpecError, match="PATH=VALUE"):
        parse_override("fit.epochs")


def test_overrides_change_the_resolved_spec_and_shapes():
    spec, graph = api.validate(
        SEED, ["fit.epochs=1", "model.layers[0].filters=16", "compile.optimizer={name: adam, learning_rate: 0.0005}"]
    )
    assert spec.config["fit"]["epochs"] == 1
    assert spec.config["compile"]["optimizer"]["learning_rate"] == 0.0005
    assert graph.summary()[0].output_shape == (26, 26, 16)


def test_an_override_inside_a_named_shorthand_expands_it():
    spec, _ = api.validate(SEED, ["compile.optimizer.learning_rate=0.0005"])
    optimizer = spec.config["compile"]["optimizer"]
    assert (optimizer["name"], optimizer["learning_rate"], optimizer["beta_1"]) == ("adam", 0.0005, 0.9)


def test_an_invalid_override_is_located_at_the_option():
    with pytest.raises(SpecError) as error:
        api.validate(SEED, ["fit.epochs=zero"])
    assert error.value.format() == "--set fit.epochs=zero: error: fit.epochs: expected an integer >= 1, got 'zero'"


@pytest.mark.parametrize("template", TEMPLATES)
def test_init_writes_a_valid_commented_spec(tmp_path, template):
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "init", "my-model", "--template", template, "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    path = tmp_path / "my-model.yaml"
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=schemas/specforge.schema.json\n")
    assert (tmp_path / "schemas" / "specforge.schema.json").read_text() == SCHEMA_FILE.read_text()
    spec, graph = api.validate(path)
    assert spec.name == "my-model"
    assert graph.output_shape == (10,)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_template_writes_a_pixel_rescale_as_the_fraction(tmp_path, template):
    """``rescale: 1/255`` is accepted, so a template says so rather than ``0.00392156862745098 # 1/255``."""
    from specforge.data.preprocessing import rescale_factor

    text = api.write_template("net", template, tmp_path).read_text()
    assert "0.0039" not in text
    spec, _ = api.validate(tmp_path / "net.yaml")
    rescale = spec.config["data"]["preprocessing"].get("rescale", 1.0)
    if rescale_factor(rescale) != 1.0:
        assert re.search(r"^ *rescale: 1/255( +#.*)?$|[{ ]rescale: 1/255[,}]", text, re.MULTILINE), text
        assert rescale == "1/255"


def test_init_refuses_to_overwrite(tmp_path):
    (tmp_path / "taken.yaml").write_text("keep me")
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "init", "taken", "--dir", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"{tmp_path / 'taken.yaml'}: error: file exists; pick another NAME or pass --force to overwrite it"
    )
    assert (tmp_path / "taken.yaml").read_text() == "keep me"


def test_the_schema_line_is_relative_and_survives_moving_the_project(tmp_path):
    api.write_template("net", "mlp", tmp_path / "project")
    moved = tmp_path / "elsewhere"
    (tmp_path / "project").rename(moved)
    line = (moved / "net.yaml").read_text().splitlines()[0]
    schema = json.loads((moved / line.split("$schema=", 1)[1]).read_text())
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/schema")
    api.write_template("second", "cnn", moved)  # the copy is shared, and left as it is when current
    assert sorted(path.name for path in moved.rglob("*")) == [
        "net.yaml",
        "schemas",
        "second.yaml",
        "specforge.schema.json",
    ]


def test_schema_write_copies_the_schema_for_hand_written_specs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "specforge", "schema", "--write", str(tmp_path / "s")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {tmp_path / 's' / 'specforge.schema.json'}\n"
    assert (tmp_path / "s" / "specforge.schema.json").read_text() == SCHEMA_FILE.read_text()


def test_init_offers_the_reference_specs_as_links_to_them():
    links = [name for name in TEMPLATES if (STARTERS_DIR / f"{name}.yaml").is_symlink()]
    assert links == sorted(REFERENCE_SPECS)
    for name in links:
        assert (STARTERS_DIR / f"{name}.yaml").resolve() == ROOT / "specs" / f"{name}.yaml"


@pytest.mark.parametrize("template", REFERENCE_SPECS)
def test_a_reference_spec_template_is_the_spec_with_its_schema_line_and_name(tmp_path, template):
    written = api.write_template("mine", template, tmp_path).read_text().splitlines()
    spec = (ROOT / "specs" / f"{template}.yaml").read_text().splitlines()
    differ = [(ours, theirs) for ours, theirs in zip(written, spec) if ours != theirs]
    assert len(written) == len(spec)
    assert differ == [
        (
            "# yaml-language-server: $schema=schemas/specforge.schema.json",
            "# yaml-language-server: $schema=../schemas/specforge.schema.json",
        ),
        ("name: mine", f"name: mnist-{template}"),
    ]
