"""Each text spec's test accuracy beside scikit-learn's TF-IDF baselines, on the same split.

    pip install -e '.[bench]'                     # scikit-learn, for the baselines only
    python benchmarks/text.py                     # trains every spec of TEXT_SPECS (its full fit.epochs)
    python benchmarks/text.py --run sms_conv1d=runs/sms-conv1d   # a finished run of a spec instead

Each spec of ``TEXT_SPECS`` (a table with one text column, specs/data/sms_spam.csv's messages) is trained
with specforge into a temporary run directory (or its finished run is read) and its test accuracy read.
The baselines are fitted on exactly the training rows of the spec's split (``data.test_fraction``,
``split_seed``; the same rows specforge trains on, read by specforge's table source) and scored on the
same test rows: scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` on the raw text
column, then ``LogisticRegression(max_iter=1000)`` or ``LinearSVC()`` with their default regularization.
Specs of the same rows and columns (vectorized in any way) share their baselines.  A further text spec is one more name in
``TEXT_SPECS`` (a file in specs/ with one text feature and a class target).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specforge import api
from specforge.data.table.source import fit_table
from specforge.spec import Spec
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"

#: The text specs compared, by file name in specs/ without ``.yaml``.
TEXT_SPECS = ("sms_bag_of_embeddings", "sms_conv1d", "sms_transformer", "sms_bilstm")


@dataclass
class Split:
    """A spec's text split as the baselines take it: documents and class indices."""

    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    description: str


def text_split(spec: Spec) -> Split:
    """The training and test rows of ``spec``'s table, read and split by specforge itself."""
    data = spec.config["data"]
    tables, _, pipeline = fit_table(data, spec.base_dir)
    (feature,) = pipeline.text_features
    train, test = tables["train"], tables["test"]
    return Split(
        feature.documents(train),
        pipeline.target.encode(train),
        feature.documents(test),
        pipeline.target.encode(test),
        f"{data['train']}, column {feature.column!r}: {len(train)} training rows, {len(test)} test rows "
        f"(test_fraction {data.get('test_fraction')}, split_seed {data.get('split_seed', 0)})",
    )


def split_key(spec: Spec) -> str:
    """What fixes a spec's rows and documents: its data section but the way its text is vectorized."""
    data = spec.config["data"]
    columns = [feature["column"] for feature in data["features"]]
    return json.dumps({**{key: value for key, value in data.items() if key != "features"}, "columns": columns})


def baselines(split: Split) -> dict[str, float]:
    """Test accuracy of TF-IDF with logistic regression and with a linear SVM."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    models = {
        "TF-IDF (1-2 grams) + LogisticRegression": LogisticRegression(max_iter=1000),
        "TF-IDF (1-2 grams) + LinearSVC": LinearSVC(),
    }
    scores = {}
    for label, model in models.items():
        fitted = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), model)
        fitted.fit(split.train_texts, split.train_labels)
        scores[label] = float(fitted.score(split.test_texts, split.test_labels))
    return scores


def spec_accuracy(spec: Spec, run_dir: Path | None, root: Path) -> float:
    """The spec's test accuracy: of its finished run ``run_dir``, or of a run trained now into ``root``."""
    if run_dir is not None:
        return float(json.loads((run_dir / "metrics.json").read_text())["accuracy"])
    return float(api.fit(spec, out=root / spec.name, progress=Silent()).metrics["accuracy"])


def main() -> None:
    import sklearn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", default=[], metavar="SPEC=RUN", help="a finished run of a spec")
    parser.add_argument("specs", nargs="*", default=list(TEXT_SPECS), help="specs to compare (default: all)")
    args = parser.parse_args()
    runs = {name: Path(path) for name, path in (item.split("=", 1) for item in args.run)}
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    groups: dict[str, list[Spec]] = {}
    for name in args.specs:
        spec = api.load_spec(SPECS / f"{name}.yaml")
        groups.setdefault(split_key(spec), []).append(spec)
    with tempfile.TemporaryDirectory() as root:
        for specs in groups.values():
            split = text_split(specs[0])
            print(split.description)
            results = {
                f"specforge {Path(spec.file).stem} ({spec.config['fit']['epochs']} epochs)": spec_accuracy(
                    spec, runs.get(Path(spec.file).stem), Path(root)
                )
                for spec in specs
            }
            reference = {f"scikit-learn {label}": accuracy for label, accuracy in baselines(split).items()}
            width = max(map(len, [*results, *reference])) + 2
            for label, accuracy in {**results, **reference}.items():
                print(f"  {label:<{width}} test accuracy {accuracy:.4f}")
            best_spec, best_baseline = max(results.values()), max(reference.values())
            print(f"  best spec - best baseline: {best_spec - best_baseline:+.4f}")


if __name__ == "__main__":
    main()
