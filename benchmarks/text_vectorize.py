"""Documents per second vectorized by an exported text model's graph (onnxruntime) and by the Python vectorizer
(``TextVectorizer.transform``), on the same synthetic documents.

    python benchmarks/text_vectorize.py                 # one onnxruntime thread, batches of 1 and 256
    python benchmarks/text_vectorize.py --threads 2

The documents are 20 to 200 words drawn from 3,000, every seventh word capitalized and followed by a comma, so
that the graph lowers and strips as real text makes it; the vocabulary is learned on them.  Each figure is the
best of three timed rounds, each at least ``--seconds`` long.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rates import best_rate
from specforge.data.text.vectorize import TextVectorizer
from specforge.export.text import TEXT_INPUT, text_preprocessing
from specforge.predict.session import make_session

OPTIONS = {
    "int": {"output_sequence_length": 200, "max_tokens": 20000},
    "int, ngrams 2": {"output_sequence_length": 200, "ngrams": 2, "max_tokens": 20000},
    "tf_idf": {"output_mode": "tf_idf", "max_tokens": 5000},
}
BATCH_SIZES = (1, 256)


def documents(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [f"Word{i}," if i % 7 == 0 else f"word{i}" for i in range(3000)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 200))) + "." for _ in range(count)]


def rate(run: Callable[[], object], batch: int, seconds: float) -> float:
    """Documents per second of ``run`` (``batch`` per call), the best of three rounds."""
    return max(best_rate(run, batch, seconds) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    parser.add_argument("--seconds", type=float, default=2.0, help="least length of one timed round")
    args = parser.parse_args()
    texts = documents(2048)
    feed = np.array(texts, dtype=object)
    print(f"{'vectorize':<16}{'batch':>6}{'graph docs/s':>14}{'python docs/s':>15}")
    for name, options in OPTIONS.items():
        vectorizer = TextVectorizer.from_options(options).fit(texts)
        session = make_session(text_preprocessing(vectorizer).SerializeToString(), threads=args.threads)
        for batch in BATCH_SIZES:
            graph = rate(partial(session.run, None, {TEXT_INPUT: feed[:batch]}), batch, args.seconds)
            python = rate(partial(vectorizer.transform, texts[:batch]), batch, args.seconds)
            print(f"{name:<16}{batch:>6}{graph:>14,.0f}{python:>15,.0f}")


if __name__ == "__main__":
    main()
