"""Text columns of the table source: documents vectorized as Keras' TextVectorization with the vocabulary learned
on the training split only and kept in the run, read from CSV, JSON lines or Parquet, described by data info, and
the refusals of text data (one located line, exit 2, no traceback)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from specforge import api
from specforge.base.errors import DataError
from specforge.data import Preprocessing, load_dataset
from specforge.data.table.read import read_table
from specforge.training.progress import Silent

REPO = Path(__file__).resolve().parents[2]

TRAIN = [
    ("spam", "win cash now", 3),
    ("ham", "see you at lunch", 4),
    ("spam", "win a free prize now", 5),
    ("ham", "lunch at noon", 3),
    ("spam", "free cash prize", 3),
    ("ham", "see you soon", 3),
]
TEST = [("spam", "free unicorn now", 3), ("ham", "", 0)]

EMBEDDING_MODEL = {
    "layers": [
        {"type": "Embedding", "input_dim": 20, "output_dim": 4},
        {"type": "GlobalAveragePooling1D"},
        {"type": "Dense", "units": 2, "activation": "softmax"},
    ]
}


def write_rows(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "message", "words"])
        writer.writerows(rows)
    return path


def write_spec(directory: Path, features: list[dict], model: dict | None = None, **data) -> Path:
    write_rows(directory / "train.csv", TRAIN)
    write_rows(directory / "test.csv", TEST)
    spec = {
        "version": 1,
        "name": "sms",
        "data": {
            "source": "table",
            "train": "train.csv",
            "test": "test.csv",
            "features": features,
            "target": {"column": "label"},
            **data,
        },
        "model": model or EMBEDDING_MODEL,
        "compile": {"optimizer": "adam", "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "fit": {"epochs": 2, "batch_size": 2, "validation": "test", "seed": 0},
    }
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "specforge", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


MESSAGE_IDS = [{"column": "message", "type": "text", "vectorize": {"output_sequence_length": 4}}]


def test_a_text_column_becomes_token_ids_of_the_training_vocabulary(tmp_path):
    spec = api.load_spec(write_spec(tmp_path, MESSAGE_IDS))
    dataset = api.load_data(spec)
    (feature,) = dataset.preprocessing.pipeline.features
    vocabulary = feature.vectorizer.vocabulary
    assert "unicorn" not in vocabulary  # a test-only word: the vocabulary is the training split's
    assert vocabulary[:5] == ["you", "win", "see", "prize", "now"]  # by count, ties in descending byte order
    assert dataset.train.images.dtype == np.int64 and dataset.train.images.shape == (6, 4)
    index = {token: position + 2 for position, token in enumerate(vocabulary)}
    np.testing.assert_array_equal(dataset.test.images, [[index["free"], 1, index["now"], 0], [0, 0, 0, 0]])


def test_the_vocabulary_is_saved_in_the_run_and_used_again(tmp_path):
    run = api.fit(api.load_spec(write_spec(tmp_path, MESSAGE_IDS)), out=tmp_path / "run", progress=Silent())
    saved = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    vectorizer = saved["table"]["features"][0]["vectorizer"]
    assert vectorizer["output_mode"] == "int" and "unicorn" not in vectorizer["vocabulary"]
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    (tmp_path / "rows.csv").write_text("message\nwin free cash\n", encoding="utf-8")
    predictions = api.predict_rows(tmp_path / "run", tmp_path / "rows.csv")
    assert predictions.outputs.shape == (1, 2)
    (tmp_path / "rows.jsonl").write_text('{"message": "win free cash"}\n', encoding="utf-8")
    assert api.is_rows_file(tmp_path / "rows.jsonl")
    from_json = api.predict_rows(tmp_path / "run", tmp_path / "rows.jsonl")
    np.testing.assert_array_equal(from_json.outputs, predictions.outputs)
    assert pipeline.features[0].vectorizer.vocabulary == vectorizer["vocabulary"]


def test_json_lines_and_parquet_give_the_same_inputs_as_csv(tmp_path):
    spec = write_spec(tmp_path, MESSAGE_IDS)
    rows = [{"label": label, "message": text, "words": words} for label, text, words in TRAIN]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    expected = api.load_data(api.load_spec(spec)).train.images
    for name in ("train.jsonl", "train.parquet"):
        other = api.load_data(api.load_spec(spec, [f"data.train={name}"])).train.images
        np.testing.assert_array_equal(other, expected)


def test_a_json_lines_row_that_is_not_an_object_is_refused_at_its_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"message": "hi", "label": "ham"}\n\n["hi", "ham"]\n', encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_table(path, "train")
    assert error.value.format() == (
        f"{path}:3: error: line 3 is a JSON list, not an object; write each row as an object of column names "
        'and values, such as {"text": "...", "label": "spam"}'
    )
    path.write_text('{"message": "hi", "label": "ham"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"rows.jsonl:1:33: error: line 1 is not JSON \(Expecting ','"):
        read_table(path, "train")


def test_a_bag_of_words_column_sits_beside_numeric_columns(tmp_path):
    features = [
        {"column": "message", "type": "text", "vectorize": {"output_mode": "multi_hot"}},
        {"column": "words"},
    ]
    model = {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]}
    spec = api.load_spec(write_spec(tmp_path, features, model))
    dataset = api.load_data(spec)
    size = dataset.preprocessing.pipeline.features[0].vectorizer.size
    assert dataset.train.images.shape == (6, size + 1) and dataset.train.images.dtype == np.float32
    np.testing.assert_array_equal(dataset.train.images[:, :size].sum(axis=1), [3, 4, 5, 3, 3, 3])
    api.fit(spec, out=tmp_path / "run", progress=Silent())


def test_empty_documents_are_counted_by_data_info_and_training_goes_on(tmp_path):
    write_spec(tmp_path, MESSAGE_IDS)
    result = run_cli("data", "info", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1:3] == [
        "  message: text, 4 model inputs; missing: train 0, validation 1, test 1",
        (
            "    vocabulary: 14 entries (output_mode int, 4 ids per document); most frequent: 'you' 2, 'win' 2, "
            "'see' 2, 'prize' 2, 'now' 2, 'lunch' 2, 'free' 2, 'cash' 2, 'at' 2, 'soon' 1"
        ),
    ]
    assert (
        "    test: 2 documents, 1 empty; tokens per document: p50 1.5, p90 2.7, p95 2.85, p99 2.97, max 3; "
        "out of vocabulary: 33.3% of 3 tokens"
    ) in lines
    info = api.data_info(api.load_spec(tmp_path / "spec.yaml"))
    assert info["columns"][0]["text"]["splits"]["test"]["empty"] == 1
    assert run_cli("train", "spec.yaml", "--out", "run", cwd=tmp_path).returncode == 0


def test_a_text_column_not_in_the_file_names_the_file_and_its_columns(tmp_path):
    write_spec(tmp_path, [{"column": "messages", "type": "text"}])
    line = one_line_error(run_cli("validate", "spec.yaml", cwd=tmp_path))
    assert line.endswith(
        "error: data.features[0].column: "
        f"{tmp_path / 'train.csv'} has no column 'messages'; did you mean 'message'? (its columns: label, message, "
        "words)"
    )


def test_text_that_is_not_utf8_is_refused_naming_the_file_line_and_byte(tmp_path):
    write_spec(tmp_path, MESSAGE_IDS)
    (tmp_path / "train.csv").write_bytes("label,message,words\nham,fine,1\nspam,caf\xe9 now,2\n".encode("latin-1"))
    line = one_line_error(run_cli("train", "spec.yaml", "--out", "run", cwd=tmp_path))
    assert line == (
        f"{tmp_path / 'train.csv'}:3: error: byte 0xe9 at offset 39 is not UTF-8 (tables are read as UTF-8); "
        "save the file as UTF-8"
    )
    assert not (tmp_path / "run").exists()


def test_an_embedding_fed_values_says_what_gives_ids(tmp_path):
    write_spec(tmp_path, [{"column": "words"}])
    line = one_line_error(run_cli("validate", "spec.yaml", cwd=tmp_path))
    assert line.endswith(
        "model.layers[0]: Embedding takes integer token ids and the table's columns give values, not ids; use a "
        "text column with output_mode: int, such as features: [{column: message, type: text}] (output_mode int "
        "is the default)"
    )
    write_spec(tmp_path, [{"column": "message", "type": "text", "vectorize": {"output_mode": "tf_idf"}}])
    assert "Embedding takes integer token ids and the table's columns give values" in one_line_error(
        run_cli("validate", "spec.yaml", cwd=tmp_path)
    )


def test_an_embedding_smaller_than_the_vocabulary_is_refused(tmp_path):
    model = {
        **EMBEDDING_MODEL,
        "layers": [{"type": "Embedding", "input_dim": 8, "output_dim": 4}, *EMBEDDING_MODEL["layers"][1:]],
    }
    write_spec(tmp_path, MESSAGE_IDS, model)
    line = one_line_error(run_cli("validate", "spec.yaml", cwd=tmp_path))
    assert line.endswith(
        "model.layers[0].input_dim: input_dim 8 is smaller than the vocabulary's 14 ids (padding 0 and "
        "out-of-vocabulary 1 included) learned from column 'message' of train.csv; use input_dim: 14, or cap "
        "the vocabulary with data.features[0].vectorize.max_tokens: 8"
    )


def test_a_text_column_split_into_characters_is_not_exported_and_says_what_works(tmp_path):
    features = [{"column": "message", "type": "text", "vectorize": {"split": "character", "output_sequence_length": 4}}]
    write_spec(tmp_path, features)
    assert run_cli("train", "spec.yaml", "--out", "run", cwd=tmp_path).returncode == 0
    line = one_line_error(run_cli("export", "run", "--onnx", cwd=tmp_path))
    assert line == (
        "run/spec.yaml:11:14: error: data.features[0].vectorize.split: a text model that splits documents into "
        "characters (vectorize.split: character) cannot take raw strings in ONNX (no standard operator splits a "
        "string into characters); use split: whitespace"
    )
    assert not (tmp_path / "run" / "model.onnx").exists()


def test_the_training_split_alone_names_the_vocabulary_when_test_is_drawn_from_it(tmp_path):
    path = write_spec(tmp_path, MESSAGE_IDS)
    config = yaml.safe_load(path.read_text())
    del config["data"]["test"]
    config["data"]["test_fraction"] = 0.5
    path.write_text(yaml.safe_dump(config))
    dataset = load_dataset(
        api.load_spec(path).config["data"], (4,), base_dir=tmp_path, input_dtype="int64", validation="none"
    )
    train_words = {word for row in dataset.train.table.texts("message") for word in (row or "").split()}
    assert set(dataset.preprocessing.pipeline.features[0].vectorizer.vocabulary) == train_words


def test_data_show_draws_a_text_column_as_its_documents_lengths(tmp_path, monkeypatch):
    from PIL import Image

    from specforge.data.table import info

    write_spec(tmp_path, MESSAGE_IDS)
    drawn = []

    def panel(values, title):
        drawn.append((values, title))
        return Image.new("RGB", info.PANEL)

    monkeypatch.setattr(info, "column_panel", panel)
    path = api.render_samples(api.load_spec(tmp_path / "spec.yaml"), "train", tmp_path / "train.png")
    assert Image.open(path).size == (2 * (info.PANEL[0] + info.GAP) + info.GAP, info.PANEL[1] + 2 * info.GAP)
    (lengths, title), (labels, _) = drawn
    assert title == "message (tokens)" and lengths.tolist() == [3, 4, 5, 3, 3, 3]
    assert sorted(labels) == ["ham"] * 3 + ["spam"] * 3
