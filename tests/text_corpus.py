"""Small text folders written for the tests: documents in class sub-folders (Keras' text_dataset_from_directory
layout), two topics that share filler words, so that a bag of embeddings separates them by their own words."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

TOPICS = {
    "cooking": ["recipe", "oven", "flour", "sugar", "bake", "stir", "salt", "pepper", "butter", "dough"],
    "sport": ["goal", "match", "team", "score", "player", "coach", "league", "win", "referee", "stadium"],
}
FILLER = ["the", "a", "of", "and", "to", "is", "in", "it", "was"]


def write_documents(root: Path, documents: dict[str, list[str]]) -> Path:
    """``root/<class>/<i>.txt`` for each class's documents (UTF-8)."""
    for label, texts in documents.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for index, text in enumerate(texts):
            (root / label / f"{index:03d}.txt").write_text(text, encoding="utf-8")
    return root


def topic_documents(count: int, seed: int) -> dict[str, list[str]]:
    """``count`` documents per topic: 4 to 12 words, each a topic word or a filler word, capitalized, with
    punctuation (which the default standardization strips)."""
    rng = random.Random(seed)
    return {
        label: [
            " ".join(
                rng.choice(words if rng.random() < 0.5 else FILLER) for _ in range(rng.randint(4, 12))
            ).capitalize()
            + rng.choice(".!?")
            for _ in range(count)
        ]
        for label, words in TOPICS.items()
    }


def write_topics(root: Path, train: int = 30, test: int = 10) -> Path:
    """``root/train`` and ``root/test`` of the two topics."""
    write_documents(root / "train", topic_documents(train, seed=0))
    write_documents(root / "test", topic_documents(test, seed=1))
    return root


def write_spec(
    path: Path, *, vectorize: dict | None = None, layers: list[dict] | None = None, epochs: int = 20, **model: object
) -> Path:
    """A bag-of-embeddings spec (Embedding, GlobalAveragePooling1D, Dense) on ``train``/``test`` beside it."""
    spec = {
        "version": 1,
        "name": "bag",
        "data": {
            "source": "text_folder",
            "train": "train",
            "test": "test",
            "vectorize": vectorize if vectorize is not None else {"output_sequence_length": 16},
        },
        "model": {
            **model,
            "layers": layers
            or [
                {"type": "Embedding", "input_dim": 32, "output_dim": 8},
                {"type": "GlobalAveragePooling1D"},
                {"type": "Dense", "units": 2, "activation": "softmax"},
            ],
        },
        "compile": {
            "optimizer": {"name": "adam", "learning_rate": 0.05},
            "loss": "categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": epochs, "batch_size": 8, "validation": "test", "seed": 0},
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def trained_run(root: Path, **options: object):
    """A bag of embeddings trained on ``root``'s topics (written there), run directory ``root/run``."""
    from specforge import api

    write_topics(root)
    return api.fit(write_spec(root / "spec.yaml", **options), out=root / "run", quiet=True)
