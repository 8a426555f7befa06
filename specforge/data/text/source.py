"""The ``text_folder`` source: a directory per split of ``.txt`` documents in class sub-folders, vectorized by a
vocabulary learned on the training split only (``data.vectorize``)."""

from __future__ import annotations

from pathlib import Path

from specforge.data.files import resolve
from specforge.data.splits import SPLIT_NAMES, DataShape, Loaded, Probe, Split
from specforge.data.text.folder import Documents, read_documents, text_classes
from specforge.data.text.vectorize import TextVectorizer


def read_splits(spec: dict, base_dir: Path) -> tuple[dict[str, Documents], list[str]]:
    """Every split's documents (training first, which names the classes unless ``class_names`` does)."""
    classes: list[str] | None = spec.get("class_names")
    documents = {}
    for split in SPLIT_NAMES:
        if split in spec:
            documents[split], classes = read_documents(split, resolve(base_dir, spec[split]), split, classes)
    return documents, list(classes or [])


def fit_text(spec: dict, base_dir: Path) -> tuple[dict[str, Documents], list[str], TextVectorizer]:
    """The documents, the classes, and the vectorizer fitted on the training documents."""
    documents, classes = read_splits(spec, base_dir)
    vectorizer = TextVectorizer.from_options(spec.get("vectorize") or {}).fit(documents["train"].texts)
    return documents, classes, vectorizer


def load_text(spec: dict, base_dir: Path) -> Loaded:
    documents, classes, vectorizer = fit_text(spec, base_dir)
    loaded = Loaded({}, {}, classes, text=vectorizer)
    for name, split in documents.items():
        directory = str(resolve(base_dir, spec[name]))
        loaded.splits[name] = Split(
            name, vectorizer.transform(split.texts), split.labels, directory, directory, texts=split.texts
        )
        loaded.digests.update(split.digests)
    return loaded


def vectorized_with(loaded: Loaded, vectorizer: TextVectorizer) -> Loaded:
    """``loaded`` with its documents vectorized by ``vectorizer`` (a run's, saved with its preprocessing)."""
    for split in loaded.splits.values():
        split.images = vectorizer.transform(split.texts or [])
    loaded.text = vectorizer
    return loaded


def text_probe(spec: dict, base_dir: Path) -> dict[str, Probe]:
    return {
        split: Probe(str(directory), classes=text_classes(directory, split))
        for split, directory in ((split, resolve(base_dir, spec[split])) for split in SPLIT_NAMES if split in spec)
    }


def text_shape(spec: dict, base_dir: Path) -> DataShape:
    _, classes, vectorizer = fit_text(spec, base_dir)
    if vectorizer.output_mode == "int":
        origin = (
            f"the documents become {vectorizer.output_sequence_length} token ids each "
            "(vectorize.output_sequence_length)"
        )
    else:
        origin = f"the documents become {vectorizer.size} values each (the vocabulary's size)"
    return DataShape(vectorizer.output_shape, len(classes), origin, vocabulary_size=vectorizer.size)
