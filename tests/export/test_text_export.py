"""A text model exported with its vectorization in the graph: raw documents in, the same token ids as the
Python vectorizer for every option (standardize, ngrams, output modes, truncation) under onnxruntime and under
onnxruntime-node and onnxruntime-web (run by Node.js); the export's parity gate and its vocabulary are the run's
saved ones, not relearned; what cannot be expressed is refused."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from needs import require
from text_corpus import trained_run, write_documents
from typer.testing import CliRunner

from export.test_node import NODE, loadable
from specforge import api
from specforge.cli.commands import app
from specforge.data import Preprocessing
from specforge.data.text.vectorize import TextVectorizer
from specforge.export.onnx import export_graph
from specforge.export.parity import check_text_parity
from specforge.export.text import TEXT_INPUT, text_model, text_preprocessing
from specforge.predict.run_model import RunPredictor
from specforge.predict.session import make_session

TRAIN = [
    "The quick brown fox jumps over the lazy dog",
    "the dog's bone, the fox's den; QUICK quick quick",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "ÀÉ stays upper: émile Émile",
    'a-b a_b a.b (a) [b] {c} <d> #e @f $g %h ^i &j *k +l =m |n ~o `p\' "q" \\r /s ?t !u :v',
]
#: What the graph must vectorize exactly as Python does: punctuation inside and around tokens, tokens that are
#: only punctuation, ASCII and non-ASCII capitals, every ASCII whitespace, no-break and em spaces (not
#: whitespace to Keras), an empty document, one of punctuation only, one longer than any sequence length.
DOCUMENTS = [
    "The QUICK, brown fox -- jumps!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "ÀÉ stays upper: Émile émile",
    "no\xa0break and em\u2003space",
    "",
    "!!! ... ???",
    'a-b a_b a.b (a) [b] {c} <d> #e @f $g %h ^i &j *k +l =m |n ~o `p\' "q" \\r /s ?t !u :v',
    " ".join(["the fox"] * 30),
    "dog dog dog dog unknownword",
]
OPTIONS = [
    {"output_sequence_length": 8},
    {"output_sequence_length": 40, "ngrams": 3},
    {"standardize": "lower", "output_sequence_length": 12},
    {"standardize": "strip_punctuation", "max_tokens": 10},
    {"standardize": "none", "ngrams": 2},
    {"output_mode": "multi_hot", "ngrams": 2},
    {"output_mode": "count"},
    {"output_mode": "tf_idf", "ngrams": 2, "max_tokens": 20},
]


def vectorizer(options: dict) -> TextVectorizer:
    return TextVectorizer.from_options(options).fit(TRAIN)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()))
def test_the_graph_gives_the_vectorizers_ids(options):
    fitted = vectorizer(options)
    model = text_preprocessing(fitted)
    onnx.checker.check_model(model)
    got = make_session(model.SerializeToString()).run(None, {TEXT_INPUT: np.array(DOCUMENTS, dtype=object)})[0]
    expected = fitted.transform(DOCUMENTS)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_the_graph_holds_only_standard_operators_and_no_locale():
    model = text_preprocessing(vectorizer({"output_mode": "tf_idf", "ngrams": 2}))
    operators = {(node.domain or "ai.onnx", node.op_type) for node in model.graph.node}
    assert {domain for domain, _ in operators} == {"ai.onnx", "ai.onnx.ml"}
    assert ("ai.onnx", "StringNormalizer") not in operators and ("ai.onnx.ml", "LabelEncoder") in operators
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 20), ("ai.onnx.ml", 2)]


SCRIPT = """
async function main(runtime, modelPath, documentsPath) {
  const ort = require(runtime);
  const session = await ort.InferenceSession.create(modelPath);
  const documents = JSON.parse(require('fs').readFileSync(documentsPath, 'utf8'));
  const outputs = await session.run({ text: new ort.Tensor('string', documents, [documents.length]) });
  const result = outputs[session.outputNames[0]];
  console.log(JSON.stringify({ dims: result.dims, data: Array.from(result.data, Number) }));
}
main(...process.argv.slice(2));
"""


@pytest.mark.parametrize("runtime", ["onnxruntime-node", "onnxruntime-web"])
@pytest.mark.parametrize("options", [OPTIONS[1], OPTIONS[7]], ids=["int-ngrams", "tf_idf"])
def test_javascript_runtimes_give_the_same_ids(runtime, options, tmp_path):
    require(loadable(runtime), f"node with {runtime} (npm ci --ignore-scripts)")
    fitted = vectorizer(options)
    (tmp_path / "vectorize.onnx").write_bytes(text_preprocessing(fitted).SerializeToString())
    (tmp_path / "documents.json").write_text(json.dumps(DOCUMENTS), encoding="utf-8")
    (tmp_path / "run.js").write_text(SCRIPT)
    done = subprocess.run(
        [NODE, "run.js", runtime, "vectorize.onnx", "documents.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = fitted.transform(DOCUMENTS)
    assert result["dims"] == list(expected.shape)
    np.testing.assert_allclose(np.array(result["data"]).reshape(expected.shape), expected, rtol=1e-6)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(
        tmp_path_factory.mktemp("text"), vectorize={"output_sequence_length": 16, "ngrams": 2, "max_tokens": 32}
    )


def test_the_export_takes_raw_documents_with_the_runs_saved_vocabulary(run, tmp_path):
    saved = Preprocessing.from_dict(run.preprocessing).vectorizer
    shutil.rmtree(run.path.parent / "train")  # the vocabulary these files would give is not the run's
    write_documents(run.path.parent / "train", {"cooking": ["zebra zebra yak"], "sport": ["yak yak zebra"]})
    result = api.export(run, output=tmp_path / "bag.onnx")
    assert result.parity.passed and result.parity.examples == 22 and result.opset == 20
    assert result.parity.data == "text_folder test[0:20] + train[0:2]"
    model = onnx.load(tmp_path / "bag.onnx")
    (text,) = model.graph.input
    assert (text.name, text.type.tensor_type.elem_type) == ("text", onnx.TensorProto.STRING)
    assert [d.dim_param or d.dim_value for d in text.type.tensor_type.shape.dim] == ["N"]
    (lookup,) = [node for node in model.graph.node if node.op_type == "LabelEncoder"]
    keys = next(attribute.strings for attribute in lookup.attribute if attribute.name == "keys_strings")
    assert [key.decode() for key in keys] == saved.vocabulary and "zebra" not in saved.vocabulary
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert (metadata["input_name"], metadata["input_shape"], metadata["preprocessing_in_graph"]) == (
        "text",
        '["N"]',
        "true",
    )
    documents = np.array(["Stir the sugar, then BAKE!", "goal: the team's win", ""], dtype=object)
    probabilities = make_session(tmp_path / "bag.onnx").run(["probabilities"], {"text": documents})[0]
    np.testing.assert_allclose(probabilities, RunPredictor(run.path).run(documents), rtol=1e-4, atol=1e-5)


def test_the_parity_gate_names_a_vectorization_that_differs(run):
    """A graph built with another vocabulary than the numpy side's fails the gate at the vectorization."""
    saved = Preprocessing.from_dict(run.preprocessing).vectorizer
    other = TextVectorizer.from_dict({**saved.to_dict(), "vocabulary": list(reversed(saved.vocabulary))})
    network = export_graph(run.graph, run.weights(), opset=20)
    texts = ["the oven and the flour", "a goal for the team", "stir the dough"]
    result = check_text_parity(run.graph, run.weights(), text_model(network, other), saved, texts, opset=20)
    assert not result.passed and result.first_mismatch == "the text vectorization"
    assert check_text_parity(run.graph, run.weights(), text_model(network, saved), saved, texts, opset=20).passed


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def test_what_a_graph_cannot_take_as_raw_text_is_refused_in_one_line(run, tmp_path):
    result = invoke("export", run.path, "--quantize", "int8", "-o", tmp_path / "q.onnx")
    assert result.exit_code == 2 and result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert "a text model taking raw documents is exported in float; leave out --quantize" in result.stderr
    characters = trained_run(tmp_path / "characters", epochs=1, vectorize={"split": "character"})
    result = invoke("export", characters.path)
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{characters.path / 'spec.yaml'}:") and ": data.vectorize.split: " in line
    assert "no standard operator splits a string into characters" in line
    assert not (characters.path / "model.onnx").exists()
    result = invoke("export", characters.path, "--no-preprocessing", "-o", tmp_path / "ids.onnx")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("documents", [[""], ["", "  \t"], ["!!!", "..."]], ids=["empty", "whitespace", "punctuation"])
def test_a_batch_without_tokens_is_all_padding(documents):
    for options in (OPTIONS[1], OPTIONS[7]):
        fitted = vectorizer(options)
        session = make_session(text_preprocessing(fitted).SerializeToString())
        got = session.run(None, {TEXT_INPUT: np.array(documents, dtype=object)})[0]
        np.testing.assert_array_equal(got, fitted.transform(documents))


def test_a_bag_of_words_model_exports_with_its_logits(tmp_path):
    """A tf_idf model (Dense on one vector per document) takes raw documents too, and keeps --logits."""
    run = trained_run(
        tmp_path,
        epochs=3,
        vectorize={"output_mode": "tf_idf", "ngrams": 2, "max_tokens": 40},
        layers=[{"type": "Dense", "units": 2, "activation": "softmax"}],
    )
    result = api.export(run, logits=True, output=tmp_path / "tfidf.onnx")
    assert result.parity.passed and result.outputs == ["probabilities", "logits"]
    documents = np.array(["Stir the sugar, then BAKE!", "goal: the team's win"], dtype=object)
    probabilities = make_session(tmp_path / "tfidf.onnx").run(["probabilities"], {"text": documents})[0]
    np.testing.assert_allclose(probabilities, RunPredictor(run.path).run(documents), rtol=1e-4, atol=1e-5)


def test_a_masked_recurrent_model_exports_with_its_masks_in_the_graph(tmp_path):
    """Embedding(mask_zero) into a Bidirectional LSTM and a masked average: the padding vectorization adds at the
    end is masked in the ONNX graph as in numpy, which the parity gate checks on the documents."""
    run = trained_run(
        tmp_path,
        epochs=2,
        vectorize={"output_sequence_length": 12, "max_tokens": 32},
        layers=[
            {"type": "Embedding", "input_dim": 32, "output_dim": 4, "mask_zero": True},
            {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 3, "return_sequences": True}},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ],
    )
    result = api.export(run, output=tmp_path / "masked.onnx")
    assert result.parity.passed
    ops = {node.op_type for node in onnx.load(tmp_path / "masked.onnx").graph.node}
    assert {"LSTM", "TopK", "CumSum", "Equal"} <= ops
    documents = np.array(["Stir the sugar, then BAKE!", "goal", ""], dtype=object)
    probabilities = make_session(tmp_path / "masked.onnx").run(["probabilities"], {"text": documents})[0]
    np.testing.assert_allclose(probabilities, RunPredictor(run.path).run(documents), rtol=1e-4, atol=1e-5)
