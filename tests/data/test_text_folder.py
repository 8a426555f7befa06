"""The text_folder source: classes from sub-folders, the vocabulary learned on the training split only, data
info's description of the text, and its refusals (one located line, exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from text_corpus import write_documents, write_spec, write_topics

from specforge import api
from specforge.base.errors import DataError
from specforge.data import load_dataset
from specforge.data.text.folder import read_documents

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "specforge", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_classes_are_the_sorted_sub_folders_and_each_file_one_document(tmp_path):
    write_documents(tmp_path, {"spam": ["buy now"], "ham": ["hello there", "see you"]})
    (tmp_path / "ham" / "notes.md").write_text("not a document")
    documents, classes = read_documents("train", tmp_path, "train", None)
    assert classes == ["ham", "spam"]
    assert documents.texts == ["hello there", "see you", "buy now"]
    assert documents.labels.tolist() == [0, 0, 1]
    assert sorted(documents.digests) == ["train/ham/000.txt", "train/ham/001.txt", "train/spam/000.txt"]


def test_the_vocabulary_is_learned_on_the_training_split_only(tmp_path):
    write_documents(tmp_path / "train", {"a": ["red red blue"], "b": ["green"]})
    write_documents(tmp_path / "test", {"a": ["red purple"], "b": ["purple purple"]})
    data = {"source": "text_folder", "train": "train", "test": "test", "vectorize": {"output_sequence_length": 3}}
    dataset = load_dataset(data, (3,), base_dir=tmp_path, input_dtype="int64", validation="none")
    assert dataset.preprocessing.vectorizer.vocabulary == ["red", "green", "blue"]
    np.testing.assert_array_equal(dataset.test.images, [[2, 1, 0], [1, 1, 0]])
    assert dataset.preprocessing.to_dict()["text"]["vocabulary"] == ["red", "green", "blue"]


def test_data_info_describes_the_vocabulary_and_each_split(tmp_path):
    write_documents(tmp_path / "train", {"a": ["Red, red blue!", "..."], "b": ["green"]})
    write_documents(tmp_path / "test", {"a": ["red purple"], "b": ["purple purple purple"]})
    spec = write_spec(tmp_path / "spec.yaml", vectorize={"output_sequence_length": 2})
    info = api.data_info(api.load_spec(spec))["text"]
    assert info["vocabulary_size"] == 5 and info["most_frequent"][0] == ["red", 2]
    train, test = info["splits"]["train"], info["splits"]["test"]
    assert (train["documents"], train["empty"], train["out_of_vocabulary"], train["truncated"]) == (3, 1, 0.0, 1)
    assert test["out_of_vocabulary"] == pytest.approx(4 / 5)
    assert test["length_percentiles"]["100"] == 3 and test["length_percentiles"]["50"] == 2.5
    lines = run_cli("data", "info", "spec.yaml", cwd=tmp_path).stdout
    assert "vocabulary: 5 entries (output_mode int, 2 ids per document); most frequent: 'red' 2" in lines
    assert "test: 2 documents, 0 empty, 1 cut at the sequence length" in lines
    assert "out of vocabulary: 80.0% of 5 tokens" in lines


def test_validate_reads_the_input_shape_of_ids_from_the_data(tmp_path):
    write_topics(tmp_path)
    write_spec(tmp_path / "spec.yaml", vectorize={"output_sequence_length": 7})
    result = run_cli("validate", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 0 and "bag: input (7,) of int64 ids" in result.stdout


def test_a_bag_of_words_mode_gives_the_model_a_vector_over_the_vocabulary(tmp_path):
    write_topics(tmp_path)
    spec = write_spec(
        tmp_path / "spec.yaml",
        vectorize={"output_mode": "tf_idf", "max_tokens": 12},
        layers=[{"type": "Dense", "units": 2, "activation": "softmax"}],
    )
    assert api.validate(spec)[1].input_shape == (12,)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_a_folder_without_class_sub_folders_is_refused(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "1.txt").write_text("loose document")
    write_spec(tmp_path / "spec.yaml")
    line = _one_line_error(run_cli("validate", "spec.yaml", cwd=tmp_path))
    assert line.endswith(
        "train: error: no class sub-folders; put each class's .txt documents in its own folder, "
        "e.g. train/positive/1.txt, train/negative/2.txt"
    )


def test_text_that_is_not_utf8_is_refused_naming_the_file_line_and_byte(tmp_path):
    write_topics(tmp_path)
    (tmp_path / "train" / "sport" / "latin1.txt").write_bytes("first line\nna\xefve caf\xe9".encode("latin-1"))
    write_spec(tmp_path / "spec.yaml")
    line = _one_line_error(run_cli("train", "spec.yaml", "--out", "run", cwd=tmp_path))
    assert line == (
        f"{tmp_path / 'train' / 'sport' / 'latin1.txt'}:2: error: byte 0xef at offset 13 is not "
        "UTF-8 (documents are read as UTF-8); save the file as UTF-8"
    )
    assert not (tmp_path / "run").exists()
    with pytest.raises(DataError, match="byte 0xef at offset 13"):
        read_documents("train", tmp_path / "train", "train", None)


def test_an_input_dim_smaller_than_the_vocabulary_is_refused_at_the_layer(tmp_path):
    write_topics(tmp_path)
    spec = write_spec(
        tmp_path / "spec.yaml",
        layers=[
            {"type": "Embedding", "input_dim": 10, "output_dim": 4},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ],
    )
    size = api.data_info(api.load_spec(spec))["text"]["vocabulary_size"]
    line = _one_line_error(run_cli("validate", "spec.yaml", cwd=tmp_path))
    assert line == (
        f"spec.yaml:12:16: error: model.layers[0].input_dim: input_dim 10 is smaller than the "
        f"vocabulary's {size} ids (padding 0 and out-of-vocabulary 1 included) learned from train; use "
        f"input_dim: {size}, or cap the vocabulary with vectorize.max_tokens: 10"
    )


def test_an_embedding_fed_a_bag_of_words_is_refused(tmp_path):
    write_topics(tmp_path)
    write_spec(tmp_path / "spec.yaml", vectorize={"output_mode": "count"})
    line = _one_line_error(run_cli("validate", "spec.yaml", cwd=tmp_path))
    assert line.endswith(
        "model.layers[0]: Embedding takes integer token ids and data source text_folder "
        "vectorizes to count values, not ids; use source: text_folder with vectorize.output_mode: int, or a "
        "table's text column with output_mode: int"
    )


def test_empty_documents_are_counted_and_training_goes_on(tmp_path):
    write_topics(tmp_path, train=10, test=4)
    write_documents(tmp_path / "train", {"sport": [""]})  # sport/000.txt emptied
    spec = write_spec(tmp_path / "spec.yaml", epochs=1)
    info = api.data_info(api.load_spec(spec))["text"]["splits"]["train"]
    assert info["empty"] == 1
    run = api.fit(spec, out=tmp_path / "run", quiet=True)
    assert json.loads((run.path / "manifest.json").read_text())["status"] == "completed"


def test_data_show_writes_documents_with_their_token_ids(tmp_path):
    write_documents(tmp_path / "train", {"a": ["Red, red blue!"], "b": ["green   grass\nand more green"]})
    write_documents(tmp_path / "test", {"a": ["red"]})
    spec = write_spec(tmp_path / "spec.yaml", vectorize={"output_sequence_length": 4})
    path = api.render_samples(api.load_spec(spec), "train", tmp_path / "show.txt", count=5)
    assert path.read_text().splitlines() == [
        "train[0] class 0 (a)",
        "  text: Red, red blue!",
        "  ids: 2 2 6 (+1 padding)",
        "train[1] class 1 (b)",
        "  text: green grass and more green",
        "  ids: 3 5 7 4",
    ]  # red, green (2 each; ties in descending order), then more, grass, blue, and
    counts = write_spec(tmp_path / "counts.yaml", vectorize={"output_mode": "count"})
    path = api.render_samples(api.load_spec(counts), "test", tmp_path / "counts.txt", count=1)
    assert path.read_text().splitlines()[2] == "  count: red 1"


def test_a_validation_fraction_is_refused_since_the_vocabulary_has_seen_it(tmp_path):
    write_topics(tmp_path, train=5, test=2)
    write_spec(tmp_path / "spec.yaml")
    line = _one_line_error(run_cli("train", "spec.yaml", "--out", "run", "--set", "fit.validation=0.2", cwd=tmp_path))
    assert line.endswith(
        "fit.validation: fit.validation 0.2 would hold out documents the vocabulary was already "
        "learned on; put them in a folder of their own, data.validation, and set fit.validation: "
        "validation"
    )
