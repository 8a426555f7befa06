"""``specforge predict`` on a text model: documents on the command line, a text file's lines, a CSV's column, a data
split, all from the exported model and from the run directory alike (the run's saved vocabulary, never one
learned again); input that cannot be read is one located line, exit status 2."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from text_corpus import trained_run, write_documents
from typer.testing import CliRunner

from specforge import api
from specforge.cli.commands import app
from specforge.predict.run_model import RunPredictor

DOCUMENTS = ["Stir the SUGAR, then bake!", "The referee's GOAL... for the team", "Ünïcode\tand the oven"]


def invoke(*args):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = trained_run(
        tmp_path_factory.mktemp("text"), vectorize={"output_sequence_length": 16, "ngrams": 2, "max_tokens": 32}
    )
    api.export(run)
    expected = RunPredictor(run.path).run(np.array(DOCUMENTS, dtype=object))
    return run.path, expected


@pytest.fixture(params=["model.onnx", "run"])
def model(request, exported):
    run, _ = exported
    return run / "model.onnx" if request.param == "model.onnx" else run


def records(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_documents_on_the_command_line(model, exported):
    _, expected = exported
    result = invoke(model, *(f"--text={text}" for text in DOCUMENTS), "--json", "--top-k", "2")
    found = records(result)
    assert [record["source"] for record in found] == [repr(" ".join(text.split())) for text in DOCUMENTS]
    assert [record["class"] for record in found] == list(expected.argmax(axis=1))
    for record, probabilities in zip(found, expected):
        assert [entry["probability"] for entry in record["top_k"]] == pytest.approx(
            sorted(probabilities, reverse=True), rel=1e-4
        )


def test_a_text_file_and_a_csv_column(model, exported, tmp_path):
    _, expected = exported
    (tmp_path / "documents.txt").write_text("".join(text.replace("\t", " ") + "\n" for text in DOCUMENTS))
    lines = records(invoke(model, tmp_path / "documents.txt", "--json"))
    assert [record["source"] for record in lines] == [f"{tmp_path / 'documents.txt'}:{n}" for n in (1, 2, 3)]
    assert [record["class"] for record in lines] == list(expected.argmax(axis=1))
    (tmp_path / "reviews.csv").write_text(
        "id,review\n" + "".join(f'{i},"{text}"\n' for i, text in enumerate(DOCUMENTS)), encoding="utf-8"
    )
    cells = records(invoke(model, tmp_path / "reviews.csv", "--column", "review", "--json"))
    assert [record["source"] for record in cells] == [f"{tmp_path / 'reviews.csv'}:{n}" for n in (2, 3, 4)]
    assert [record["probability"] for record in cells] == pytest.approx(list(expected.max(axis=1)), rel=1e-4)


def test_a_data_split_is_vectorized_with_the_runs_saved_vocabulary(exported, tmp_path):
    """The test split's predictions stay the same when the training files change: the vocabulary the run saved
    vectorizes them (a relearned one would hold other tokens)."""
    run, _ = exported
    models = (run, run / "model.onnx")
    before = [records(invoke(model, "--data", f"{run.parent / 'spec.yaml'}:test", "--json")) for model in models]
    assert len(before[0]) == 20 and [r["class"] for r in before[0]] == [r["class"] for r in before[1]]
    assert [r["probability"] for r in before[0]] == pytest.approx([r["probability"] for r in before[1]], rel=1e-4)
    copy = tmp_path / "corpus"
    shutil.copytree(run.parent, copy, ignore=shutil.ignore_patterns("run"))
    shutil.rmtree(copy / "train")
    write_documents(copy / "train", {"cooking": ["zebra zebra yak"], "sport": ["yak yak zebra"]})
    for model, expected in zip(models, before):
        assert records(invoke(model, "--data", f"{copy / 'spec.yaml'}:test", "--json")) == expected


def one_line_error(result) -> str:
    assert result.exit_code == 2 and result.stdout == "", result.output
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    return line


def test_unreadable_or_empty_input_is_one_located_line(exported, tmp_path):
    run, _ = exported
    model = run / "model.onnx"
    (tmp_path / "latin1.txt").write_bytes("a good bake\nca\xe7a\n".encode("latin-1"))
    line = one_line_error(invoke(model, tmp_path / "latin1.txt"))
    assert line == (
        f"{tmp_path / 'latin1.txt'}:2: error: byte 0xe7 at offset 14 is not UTF-8 (documents are read as "
        "UTF-8); save the file as UTF-8"
    )
    (tmp_path / "latin1.csv").write_bytes("text\nca\xe7a\n".encode("latin-1"))
    assert ":2: error: byte 0xe7 at offset 7 is not UTF-8" in one_line_error(invoke(model, tmp_path / "latin1.csv"))
    (tmp_path / "reviews.csv").write_text("id,review\n1,a good bake\n")
    assert one_line_error(invoke(model, tmp_path / "reviews.csv")) == (
        f"{tmp_path / 'reviews.csv'}:1: error: the CSV has no column 'text'; its header has: id, review; name the "
        "documents' column with --column"
    )
    (tmp_path / "gap.csv").write_text("id,review\n1,a good bake\n2,  \n")
    assert one_line_error(invoke(model, tmp_path / "gap.csv", "--column", "review")) == (
        f"{tmp_path / 'gap.csv'}:3: error: line 3: column 'review' is empty; give a document in every row"
    )
    (tmp_path / "empty.txt").write_text("")
    assert one_line_error(invoke(model, tmp_path / "empty.txt")) == (
        f"{tmp_path / 'empty.txt'}: error: the file is empty; give one document a line"
    )
    (tmp_path / "blank.txt").write_text("a good bake\n\nthe match\n")
    assert one_line_error(invoke(run, tmp_path / "blank.txt")) == (
        f"{tmp_path / 'blank.txt'}:2: error: line 2 is blank; give one document a line, with no blank lines"
    )
    assert one_line_error(invoke(model, "--text", " ")) == (
        "--text ' ': error: text 1 is empty; give a document with words in it"
    )
    (tmp_path / "digit.png").write_bytes(b"\x89PNG")
    assert "a text model reads .txt files (one document a line) or a .csv file's column" in one_line_error(
        invoke(model, tmp_path / "digit.png")
    )
    assert "nothing to predict" in one_line_error(invoke(model))
