"""``specforge predict --backend ray``: Ray Data with a pool of onnxruntime actors gives the local path's
predictions for a data split, image files and arrays, and a text model's documents, and the command writes them as
the local path's CSV, JSON lines and Parquet hold them."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from export.models import export_spec, small_spec
from needs import need
from PIL import Image
from text_corpus import trained_run
from typer.testing import CliRunner

from specforge import api
from specforge.base.errors import RunError
from specforge.cli.commands import app


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, _, _, dataset, _ = export_spec(small_spec())
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    path.write_bytes(model.SerializeToString())
    return path, dataset


@pytest.fixture
def local_ray(local_ray):
    """The shared local Ray (tests/conftest.py), with Ray Data: predict uses the Ray it finds running."""
    need("ray.data")
    return local_ray


def same(local, distributed) -> None:
    assert [p.source for p in distributed.predictions] == [p.source for p in local.predictions]
    assert [p.top for p in distributed.predictions] == [p.top for p in local.predictions]
    assert [p.label for p in distributed.predictions] == [p.label for p in local.predictions]


def test_a_data_split_on_ray_data_matches_the_local_path(exported, local_ray):
    path, _ = exported
    local = api.predict_onnx(path, data="mnist:test", limit=1000, top_k=3, batch_size=128)
    distributed = api.predict_onnx(
        path, data="mnist:test", limit=1000, top_k=3, batch_size=128, backend="ray", actors=2
    )
    same(local, distributed)
    assert distributed.accuracy == local.accuracy


def test_images_and_arrays_on_ray_data_and_every_output_format(exported, local_ray, tmp_path):
    path, dataset = exported
    files = []
    for index, digit in enumerate(dataset.test.images[:5]):
        files.append(tmp_path / f"digit_{index}.png")
        Image.fromarray(255 - digit if index % 2 else digit).save(files[-1])
    np.savez(tmp_path / "more.npz", x_test=dataset.test.images[5:300])
    files.append(tmp_path / "more.npz")
    same(api.predict_onnx(path, files, batch_size=64), api.predict_onnx(path, files, batch_size=64, backend="ray"))
    runner = CliRunner()
    # the command on Ray writes CSV; the writers of the other formats, which take any backend's predictions, are
    # given the local path's here, and every file must hold the same rows
    for suffix, backend in (("csv", ["--backend", "ray"]), ("jsonl", []), ("parquet", [])):
        out = tmp_path / f"predictions.{suffix}"
        result = runner.invoke(app, ["predict", str(path), *map(str, files), *backend, "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert f"wrote {len(files) - 1 + 295} predictions" in result.output
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    lines = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    table = need("pyarrow.parquet").read_table(tmp_path / "predictions.parquet").to_pylist()
    assert len(rows) == len(lines) == len(table) == 300
    assert [int(row["class"]) for row in rows] == [line["class"] for line in lines] == [row["class"] for row in table]
    assert [row["source"] for row in table] == [row["source"] for row in rows]


def test_without_ray_predict_names_the_install(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RunError) as caught:
        api.predict_onnx(exported[0], data="mnist:test", limit=4, backend="ray")
    assert caught.value.format() == (
        "specforge predict: error: --backend ray needs Ray; install it with: pip install 'specforge[ray]'"
    )


def test_a_text_models_documents_on_ray_data_match_the_local_path(local_ray, tmp_path):
    run = trained_run(tmp_path, epochs=2, vectorize={"output_sequence_length": 16, "max_tokens": 32})
    model = api.export(run).path
    texts = ["Stir the SUGAR, then bake!", "The referee's GOAL", "oven, flour and dough", "win the match"]
    local = api.predict_onnx(model, texts=texts, top_k=2, batch_size=2)
    same(local, api.predict_onnx(model, texts=texts, top_k=2, batch_size=2, backend="ray", actors=2))
    assert [p.source for p in local.predictions] == [repr(text) for text in texts]


def test_each_output_of_a_model_of_several_on_ray_data_matches_the_local_path(local_ray, tmp_path):
    from test_multi_io import _two_output_spec

    from specforge.spec import spec_from_dict
    from specforge.training.progress import Silent

    run = api.fit(
        spec_from_dict(_two_output_spec()), out=tmp_path / "run", progress=Silent(), limit_train=32, limit_test=32
    )
    path = api.export(run.path).path
    for name in ("digit", "parity"):
        options = {"data": "mnist:test", "limit": 300, "top_k": 2, "batch_size": 128, "output_name": name}
        local = api.predict_onnx(path, **options)
        distributed = api.predict_onnx(path, backend="ray", actors=2, **options)
        same(local, distributed)
        assert distributed.accuracy == local.accuracy
    assert {c for p in distributed.predictions for c, _, _ in p.top} == {0, 1}
