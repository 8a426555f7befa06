"""The two reference table specs beside scikit-learn's own models, on the same splits, in one run.

    pip install scikit-learn        # the baselines only; the specs themselves need nothing more
    python benchmarks/tabular.py

For specs/breast_cancer.yaml (classification) and specs/diabetes.yaml (regression), this trains the
spec with specforge (its full fit.epochs, into a temporary run directory), reads its test metrics,
exports it and checks the exported model on the test split's raw rows, then fits scikit-learn's
logistic regression / ridge regression and MLP on exactly the same training rows, encoded by the
same fitted pipeline (the spec's statistics, learned on its training split), and scores them on the
same test rows: accuracy for the classifier, R^2 (and MAE, RMSE in the target's units) for the
regression.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specforge import api
from specforge.data import Preprocessing
from specforge.export.table import output_name, pipeline_inputs
from specforge.predict.session import make_session
from specforge.predict.table import rows_feed
from specforge.training.progress import Silent

SPECS = Path(__file__).resolve().parents[1] / "specs"


def regression_scores(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "r2": r2_score(target, predicted),
        "mae": mean_absolute_error(target, predicted),
        "rmse": float(np.sqrt(mean_squared_error(target, predicted))),
    }


def baselines(name: str, dataset, pipeline) -> dict[str, dict[str, float]]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    x_train, x_test = dataset.train.images, dataset.test.images
    if pipeline.target.regression:
        y_train = pipeline.target.decode(dataset.train.labels.astype(np.float64)).ravel()
        y_test = pipeline.target.decode(dataset.test.labels.astype(np.float64)).ravel()
        models = {
            "ridge (alpha=1)": Ridge(alpha=1.0),
            "MLP (100 relu, adam)": MLPRegressor(max_iter=2000, random_state=0),
        }
        return {
            label: regression_scores(model.fit(x_train, y_train).predict(x_test), y_test)
            for label, model in models.items()
        }
    models = {
        "logistic regression": LogisticRegression(max_iter=1000),
        "MLP (100 relu, adam)": MLPClassifier(max_iter=1000, random_state=0),
    }
    return {
        label: {"accuracy": float(model.fit(x_train, dataset.train.labels).score(x_test, dataset.test.labels))}
        for label, model in models.items()
    }


def measure(spec_file: Path, root: Path) -> None:
    spec = api.load_spec(spec_file)
    run = api.fit(spec, out=root / spec.name, progress=Silent())
    result = api.export(run)
    dataset = api.load_data(spec)
    pipeline = Preprocessing.from_dict(run.preprocessing).pipeline
    session = make_session(result.path)
    exported = session.run([output_name(pipeline.target)], rows_feed(dataset.test.table, pipeline_inputs(pipeline)))[0]
    print(
        f"{spec_file.name}: {len(dataset.train)} training rows, {len(dataset.test)} test rows "
        f"(seed {spec.config['data']['split_seed']}), {spec.config['fit']['epochs']} epochs"
    )
    if pipeline.target.regression:
        target = pipeline.target.decode(dataset.test.labels.astype(np.float64))
        ours = regression_scores(exported, target)
        print(
            f"  specforge (run test metrics):  r2 {run.metrics['r2']:.4f}  mae {run.metrics['mae']:.2f}  "
            f"rmse {run.metrics['rmse']:.2f}"
        )
        print(
            f"  specforge (exported ONNX, raw rows): r2 {ours['r2']:.4f}  mae {ours['mae']:.2f}  "
            f"rmse {ours['rmse']:.2f}"
        )
        for label, scores in baselines(spec_file.stem, dataset, pipeline).items():
            print(f"  scikit-learn {label}: r2 {scores['r2']:.4f}  mae {scores['mae']:.2f}  rmse {scores['rmse']:.2f}")
    else:
        accuracy = float(np.mean(exported.argmax(axis=1) == dataset.test.labels))
        print(f"  specforge (run test metrics):  accuracy {run.metrics['accuracy']:.4f}")
        print(f"  specforge (exported ONNX, raw rows): accuracy {accuracy:.4f}")
        for label, scores in baselines(spec_file.stem, dataset, pipeline).items():
            print(f"  scikit-learn {label}: accuracy {scores['accuracy']:.4f}")


def main() -> None:
    import warnings

    import sklearn

    warnings.filterwarnings("ignore", message="Stochastic Optimizer")
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as root:
        for name in ("breast_cancer.yaml", "diabetes.yaml"):
            measure(SPECS / name, Path(root))


if __name__ == "__main__":
    main()
