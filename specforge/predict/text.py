"""Documents to predict on for a text model: strings given on the command line, a text file (one document a
line), or a column of a CSV file; and the model inputs a text model's predictor takes.

An exported text model takes the raw documents (its vectorization is in the graph); a run directory's numpy
model, or a model exported with ``--no-preprocessing`` (token ids in), has them vectorized here with the
vocabulary saved in the run: never one learned again.  Every document is checked before anything runs: a file
that is not UTF-8 (its line and byte named), a column the file lacks, an empty document, or no documents at
all is refused.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from specforge.base.errors import DataError
from specforge.data.files import decode_utf8, read_bytes
from specforge.data.inputs import Inputs
from specforge.data.splits import Split
from specforge.data.text.vectorize import TextVectorizer
from specforge.runs.directory import MANIFEST, PREPROCESSING, read_json

TEXT_SUFFIX = ".txt"
CSV_SUFFIX = ".csv"
#: The column a CSV's documents are read from unless ``--column`` names another.
DEFAULT_COLUMN = "text"
#: Characters of a command-line document shown as its source.
SHOWN = 40


def read_texts(paths: Sequence[str | Path] = (), texts: Sequence[str] = (), *, column: str | None = None) -> Inputs:
    """The documents of ``texts`` (command-line strings), then of each file in ``paths``: a ``.txt`` file's lines,
    or a ``.csv`` file's ``column`` (default ``text``); each with where it came from."""
    documents: list[str] = []
    sources: list[str] = []
    for index, text in enumerate(texts, 1):
        if not text.strip():
            raise DataError(f"text {index} is empty; give a document with words in it", file=f"--text {text!r}")
        documents.append(text)
        sources.append(_shown(text))
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix not in (TEXT_SUFFIX, CSV_SUFFIX):
            raise DataError(
                "a text model reads .txt files (one document a line) or a .csv file's column (--column); "
                "give one of those, or a document with --text",
                file=str(path),
            )
        if not path.is_file():
            raise DataError("no such file", file=str(path))
        lines = _csv_column(path, column or DEFAULT_COLUMN) if suffix == CSV_SUFFIX else _lines(path)
        for where, text in lines:
            documents.append(text)
            sources.append(f"{path}:{where}")
    if not documents:
        raise DataError("nothing to predict; give documents with --text, .txt files or a .csv file with --column")
    return Inputs(np.array(documents, dtype=object), sources)


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= SHOWN else flat[: SHOWN - 3] + "...")


def _decoded(path: Path) -> str:
    """The file's text (a UTF-8 byte order mark dropped); DataError naming the line and byte that is not UTF-8."""
    data = read_bytes(path)
    return decode_utf8(data, str(path), "documents")


def _lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, document)`` for each line of a text file; a blank line is refused (its number named), so
    that the predictions line up with the file's lines."""
    lines = _decoded(path).splitlines()
    if not lines:
        raise DataError("the file is empty; give one document a line", file=str(path))
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(
                f"line {number} is blank; give one document a line, with no blank lines", file=str(path), line=number
            )
    return list(enumerate(lines, 1))


def _csv_column(path: Path, column: str) -> list[tuple[int, str]]:
    """``(line number, cell)`` for each row of ``column`` in a CSV file with a header row."""
    reader = csv.reader(io.StringIO(_decoded(path), newline=""))
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise DataError("the CSV is empty; give a header row of column names, then one document a row", file=str(path))
    names = [name.strip() for name in header]
    if column not in names:
        raise DataError(
            f"the CSV has no column {column!r}; its header has: {', '.join(names)}; name the documents' column "
            "with --column",
            file=str(path),
            line=1,
        )
    position = names.index(column)
    cells = []
    for row in reader:
        if not row:
            continue
        cell = row[position] if position < len(row) else ""
        if not cell.strip():
            raise DataError(
                f"line {reader.line_num}: column {column!r} is empty; give a document in every row",
                file=str(path),
                line=reader.line_num,
            )
        cells.append((reader.line_num, cell))
    if not cells:
        raise DataError("the CSV has a header but no rows", file=str(path))
    return cells


def split_texts(split: Split, split_name: str) -> Inputs:
    """A text split's documents as written, with their labels."""
    return Inputs(
        np.array(list(split.texts or []), dtype=object),
        [f"{split_name}[{i}]" for i in range(len(split))],
        np.asarray(split.labels),
    )


def model_inputs(documents: np.ndarray, vectorizer: TextVectorizer | None) -> np.ndarray:
    """What a text model's session or numpy model takes for ``documents``: the raw strings (``vectorizer``
    None: the vectorization is in the graph) or the ids or vectors of the run's saved ``vectorizer``."""
    return documents if vectorizer is None else vectorizer.transform(list(documents))


def predicts_documents(model: str | Path) -> bool:
    """Whether ``model`` (a run directory or an exported file) is a text model, without loading its weights or a
    session: its saved preprocessing holds a vectorizer.  False for anything unreadable (the predictor that
    opens it then says what is wrong)."""
    path = Path(model)
    if (path / MANIFEST).is_file():
        saved = path / PREPROCESSING
        return saved.is_file() and read_json(saved).get("text") is not None
    if not path.is_file():
        return False
    import onnx

    try:
        metadata = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # not an ONNX file: the predictor refuses it with its own message
        return False
    return json.loads(metadata.get("preprocessing", "{}")).get("text") is not None
