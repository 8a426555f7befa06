"""A bag of embeddings (Embedding, GlobalAveragePooling1D, Dense) end to end on a text folder written here: it
trains to separate two topics, keeps its vocabulary in the run, is exported to ONNX through the parity gate taking
raw documents (and, with its preprocessing left out, an int64 input of token ids), and predicts on the test split
from both exports and from the run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
from text_corpus import write_documents, write_spec, write_topics

from specforge import api
from specforge.predict.session import make_session
from specforge.training.evaluate import run_split


def test_a_bag_of_embeddings_trains_exports_and_predicts(tmp_path):
    write_topics(tmp_path)
    spec = write_spec(tmp_path / "spec.yaml")
    run = api.fit(spec, out=tmp_path / "run", quiet=True)
    assert run.metrics["accuracy"] >= 0.9
    vocabulary = json.loads((run.path / "preprocessing.json").read_text())["text"]["vocabulary"]
    assert vocabulary[:3] and len(vocabulary) + 2 <= 32

    result = api.export(run, output=tmp_path / "bag.onnx")
    assert result.parity.passed and result.parity.examples == 80
    model = onnx.load(tmp_path / "bag.onnx")
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.STRING
    ids = api.export(run, preprocessing=False, output=tmp_path / "ids.onnx")
    assert ids.parity.passed and ids.parity.examples == 80
    ids_model = onnx.load(tmp_path / "ids.onnx")
    assert ids_model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert "Gather" in {node.op_type for node in ids_model.graph.node}

    _, test = run_split(run, "test")
    expected = api.predict(run, test.images)
    from_text = make_session(tmp_path / "bag.onnx").run(None, {"text": np.array(test.texts, dtype=object)})[0]
    from_ids = make_session(tmp_path / "ids.onnx").run(None, {"input": test.images})[0]
    np.testing.assert_allclose(from_text, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(from_ids, expected, rtol=1e-4, atol=1e-5)
    report = api.predict_onnx(tmp_path / "bag.onnx", data=f"{spec}:test")
    assert len(report.predictions) == 20 and report.accuracy >= 0.9
    assert api.predict_onnx(tmp_path / "ids.onnx", data=f"{spec}:test").accuracy == report.accuracy
    assert api.predict_onnx(run.path, data=f"{spec}:test").accuracy == report.accuracy


def test_evaluate_and_resume_read_the_runs_vocabulary_back(tmp_path):
    write_topics(tmp_path, train=10, test=4)
    spec = write_spec(tmp_path / "spec.yaml", epochs=1)
    run = api.fit(spec, out=tmp_path / "run", quiet=True)
    saved = json.loads((run.path / "preprocessing.json").read_text())["text"]["vocabulary"]
    shutil.rmtree(tmp_path / "train")
    write_documents(tmp_path / "train", {"cooking": ["zebra zebra zebra yak"], "sport": ["zebra yak yak"]})
    dataset, _ = run_split(api.load_run(run.path), "test")
    assert dataset.preprocessing.vectorizer.vocabulary == saved  # not the one the changed files would give
    assert "zebra" not in saved
