"""The compiled kernels against the numpy path, and the choice between them.

Every registered layer kind's examples take a float32 training step (forward, backward, new state; with a
fused activation where the kind fuses one) on both paths: the results agree to float32 rounding, and each
path gives the same bits when run again. The optimizers' compiled updates give the numpy path's bits. When
the kernels cannot load (numba missing, a compile error, a cache directory that cannot be written) the
numpy path is used, said in one line. The bias and ReLU epilogue gives the numpy path's bits too.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import CASES, FUSING_CASES, MERGE_CASES, example_input, float_arrays, make_layer, split_every_batch

from specforge import api
from specforge.graph.plan import plan_steps
from specforge.layers import REGISTRY
from specforge.ops import im2col, kernels
from specforge.ops.epilogue import add_bias_and_activate
from specforge.ops.window import Window
from specforge.options import optimizers
from specforge.options.activations import ACTIVATIONS
from specforge.training.progress import ConsoleProgress

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch):
    """Each test decides the path afresh; the session's choice is restored after it."""
    saved = kernels.load()
    kernels.reset()
    yield
    monkeypatch.undo()
    kernels.reset()
    assert kernels.load() is saved


def on_path(path: str, monkeypatch) -> None:
    """Use the ``numpy`` or the compiled (``numba``) path from now on; the compiled one must load."""
    monkeypatch.setenv(kernels.CHOICE, path)
    kernels.reset()
    assert (kernels.load() is not None) == (path == "numba")


def training_step(layers: list, params: dict, x, merge: int = 0) -> list[np.ndarray]:
    """Output, input gradient, parameter gradients and new state of one float32 training step of ``layers``
    (a layer and the activation it fuses; new ones each time, as a seeded Dropout draws from its own generator),
    for an output gradient that is not uniform (a uniform one would hide what normalization takes out)."""
    (step,) = plan_steps(layers, [(-1,) * merge] if merge else None)
    y, cache = step.forward(params, x, True, np.random.default_rng(0))
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    dx, grads = step.backward(params, cache, dy)
    return [array.copy() for array in float_arrays([y, dx, grads, step.new_state(cache)])]


def fused(kind: str, config: dict, activation: str) -> list:
    """A layer of ``kind`` and an Activation after it, which the step planner fuses into it."""
    return [REGISTRY[kind].from_options(config), REGISTRY["Activation"].from_options({"activation": activation})]


def both_paths(make_step, monkeypatch) -> None:
    """The step on the numpy path and, twice, on the compiled path: close to the first, equal to each other."""
    results = {}
    for path, run in (("numpy", 0), ("numba", 0), ("numba", 1)):
        on_path(path, monkeypatch)
        results[path, run] = make_step()
    reference, compiled, again = results["numpy", 0], results["numba", 0], results["numba", 1]
    assert len(reference) == len(compiled)
    for expected, value, rerun in zip(reference, compiled, again):
        assert value.dtype == expected.dtype and value.shape == expected.shape
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expected).max())))
        np.testing.assert_array_equal(rerun, value)


@pytest.mark.parametrize("kind,config,shape", CASES)
def test_every_layer_example_steps_alike_on_both_paths(kind, config, shape, monkeypatch):
    params = make_layer(kind, config, shape, dtype=np.float32)[1]
    x = example_input(kind, shape, 4, 0, np.float32)
    both_paths(lambda: training_step([REGISTRY[kind].from_options(config)], params, x), monkeypatch)


@pytest.mark.parametrize("kind,config,shape", FUSING_CASES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_every_fused_example_steps_alike_on_both_paths(kind, config, shape, activation, monkeypatch):
    params = make_layer(kind, config, shape, dtype=np.float32)[1]
    x = example_input(kind, shape, 4, 0, np.float32)
    both_paths(lambda: training_step(fused(kind, config, activation), params, x), monkeypatch)


@pytest.mark.parametrize("kind,config,shapes", MERGE_CASES)
def test_every_merge_example_steps_alike_on_both_paths(kind, config, shapes, monkeypatch):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, *shape)).astype(np.float32) for shape in shapes]
    params = make_layer(kind, config, shapes, dtype=np.float32)[1]
    both_paths(lambda: training_step([REGISTRY[kind].from_options(config)], params, xs, len(shapes)), monkeypatch)


@pytest.mark.parametrize(
    "kind,config",
    [
        ("BatchNormalization", {}),
        ("MaxPooling2D", {}),
        ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}),
        ("AveragePooling2D", {}),
        ("AveragePooling2D", {"pool_size": [3, 2], "strides": 1, "padding": "same"}),
    ],
)
def test_batches_split_across_cores_step_alike(kind, config, monkeypatch):
    """A batch large enough to be split into shards (pooling) or blocks (normalization), mean far from 0."""
    split_every_batch(monkeypatch, 3)
    shape = (12, 10, 6)
    params = make_layer(kind, config, shape, dtype=np.float32)[1]
    x = (example_input(kind, shape, 64, 0, np.float32) + 3).astype(np.float32)
    layers = fused if REGISTRY[kind].fuses_activation else lambda kind, config, _: [REGISTRY[kind].from_options(config)]
    both_paths(lambda: training_step(layers(kind, config, "relu"), params, x), monkeypatch)


def test_max_pooling_records_the_first_maximum_on_both_paths(monkeypatch):
    """Windows of equal values (zeros after a ReLU) send their gradient to their first pixel on either path."""
    layer, params = make_layer("MaxPooling2D", {}, (4, 4, 2), dtype=np.float32)
    x = np.zeros((2, 4, 4, 2), np.float32)
    for path in ("numpy", "numba"):
        on_path(path, monkeypatch)
        y, cache = layer.forward(params, x, training=True)
        dx, _ = layer.backward(params, cache, np.ones_like(y))
        np.testing.assert_array_equal(dx[:, ::2, ::2], 1)
        assert dx.sum() == y.size


@pytest.mark.parametrize(
    "config",
    [
        {"name": "adam"},
        {"name": "adam", "amsgrad": True},
        {"name": "adamw", "weight_decay": 0.01},
        {"name": "sgd", "learning_rate": 0.1},
        {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    ],
    ids=str,
)
def test_compiled_updates_give_the_numpy_paths_bits(config, monkeypatch):
    """Weights packed in one buffer (as a model's) and two of their own, over more than one block."""
    rng = np.random.default_rng(0)
    shapes = [(300, 200), (7,), (3, 3, 2, 4)]
    start = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    grads = [[rng.standard_normal(shape).astype(np.float32) for shape in shapes] for _ in range(3)]
    final = {}
    for path in ("numpy", "numba"):
        on_path(path, monkeypatch)
        optimizer = optimizers.create(optimizers.resolve(config))
        params = [array.copy() for array in start]
        for step_grads in grads:
            optimizer.step(params, [grad.copy() for grad in step_grads])
        state = [value for value in optimizer.state_dict().values() if isinstance(value, np.ndarray)]
        final[path] = params + state
    for expected, value in zip(final["numpy"], final["numba"], strict=True):
        np.testing.assert_array_equal(value, expected)


# -- the choice of path ------------------------------------------------------------------------------------
def test_the_environment_forces_the_numpy_path(monkeypatch):
    monkeypatch.setenv(kernels.CHOICE, "numpy")
    assert kernels.load() is None
    assert not kernels.takes(np.zeros(3, np.float32))


def test_an_unknown_choice_is_said_and_takes_the_numpy_path(monkeypatch):
    monkeypatch.setenv(kernels.CHOICE, "fortran")
    lines: list[str] = []
    assert kernels.load(lines.append) is None
    assert lines == [
        "compiled kernels unavailable: SPECFORGE_KERNELS='fortran' is not one of auto, numba, numpy; using the numpy kernels"
    ]


def failing_compile(error: Exception):
    def compile_() -> None:
        raise error

    return compile_


@pytest.mark.parametrize(
    "error,said",
    [
        (
            RuntimeError("LLVM ran out of registers\nmore detail"),
            "numba could not compile them (RuntimeError: LLVM ran out of registers)",
        ),
        (
            ImportError("cannot import name 'njit' from 'numba'"),
            "numba could not compile them (ImportError: cannot import name 'njit' from 'numba')",
        ),
    ],
)
def test_kernels_that_do_not_compile_leave_the_numpy_path_in_one_line(error, said, monkeypatch, tmp_path):
    """Said after the line that announced the compile (the cache is empty)."""
    monkeypatch.setenv(kernels.CHOICE, "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_compile", failing_compile(error))
    lines: list[str] = []
    assert kernels.load(lines.append) is None
    assert kernels.active() is None
    assert lines == [
        f"compiling kernels… (once; kept in {tmp_path})",
        f"compiled kernels unavailable: {said}; using the numpy kernels",
    ]


@pytest.mark.parametrize("choice", ["auto", "numba"])
def test_numba_missing_leaves_the_numpy_path(choice, monkeypatch, tmp_path):
    """Without a word by default (numba is an extra), in one line when the compiled path was asked for."""
    monkeypatch.setenv(kernels.CHOICE, choice)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "numba", None)
    lines: list[str] = []
    assert kernels.load(lines.append) is None
    said = (
        "compiled kernels unavailable: numba is not installed (pip install 'specforge[fast]'); using the numpy kernels"
    )
    assert lines == ([said] if choice == "numba" else [])


def test_a_cache_directory_that_cannot_be_written_leaves_the_numpy_path(monkeypatch, tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocked / "numba"))
    lines: list[str] = []
    assert kernels.load(lines.append) is None
    assert len(lines) == 1
    assert lines[0].startswith(
        f"compiled kernels unavailable: the cache directory {blocked / 'numba'} cannot be written"
    )


def test_the_fallback_is_one_line_on_stderr_and_the_step_still_runs(tmp_path):
    """A fresh process with an unwritable cache: one warning line, no traceback, the numpy path's result."""
    blocked = tmp_path / "a file"
    blocked.write_text("")
    probe = (
        "import numpy as np; from specforge.ops import kernels; from specforge.layers import REGISTRY; "
        "layer = REGISTRY['MaxPooling2D'].from_options({}); x = np.arange(32, dtype=np.float32).reshape(1, 4, 4, 2); "
        "print(layer.forward({}, x, training=True)[0].ravel().tolist(), kernels.active())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_environment(), "NUMBA_CACHE_DIR": str(blocked / "numba"), kernels.CHOICE: "numba"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("specforge: warning: compiled kernels unavailable: the cache directory")
    assert result.stdout == "[10.0, 11.0, 14.0, 15.0, 26.0, 27.0, 30.0, 31.0] None\n"


def test_compiling_is_said_only_when_the_cache_lacks_the_kernels(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_compile", lambda: kernels)
    lines: list[str] = []
    assert kernels.load(lines.append) is kernels
    assert lines == [f"compiling kernels… (once; kept in {tmp_path})"]
    (tmp_path / "specforge" / "ops").mkdir(parents=True)
    (tmp_path / "specforge" / "ops" / "numba_kernels.adam-210.py312.nbi").write_bytes(b"")
    kernels.reset()
    lines.clear()
    assert kernels.load(lines.append) is kernels
    assert lines == []


def test_the_cache_is_per_user_unless_numba_is_told(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernels.cache_directory() == tmp_path / "specforge" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernels.cache_directory() == tmp_path / "mine"


def test_validate_does_not_import_numba():
    probe = (
        "import sys; from specforge import api, cli; api.validate(sys.argv[1]); "
        "print('numba' in sys.modules, 'specforge.ops.numba_kernels' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "specs" / "mnist.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_environment(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "False False\n"


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_training_says_when_it_compiles_and_when_it_falls_back(monkeypatch, tmp_path):
    """On the progress stream, before the first epoch; the run then trains on the numpy path."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "_compile", failing_compile(RuntimeError("no target machine")))
    stream = io.StringIO()
    run = api.fit(
        ROOT / "specs" / "mnist.yaml",
        overrides=["fit.epochs=1"],
        out=tmp_path / "run",
        progress=ConsoleProgress(stream, quiet=True),
        limit_train=32,
        limit_test=16,
    )
    lines = stream.getvalue().splitlines()
    failure = "numba could not compile them (RuntimeError: no target machine)"
    assert lines[:2] == [
        f"compiling kernels… (once; kept in {tmp_path / 'cache'})",
        f"compiled kernels unavailable: {failure}; using the numpy kernels",
    ]
    assert lines[2].startswith("Epoch 1/1 - ")
    assert run.manifest["status"] == "completed"


@pytest.mark.parametrize("shape", [(5, 7, 6, 16), (33, 10)])
def test_the_compiled_bias_and_relu_give_the_numpy_paths_bits(shape, monkeypatch):
    rng = np.random.default_rng(0)
    product = rng.standard_normal(shape).astype(np.float32)
    bias = rng.standard_normal(shape[-1]).astype(np.float32)
    outputs = {}
    for path in ("numpy", "numba"):
        on_path(path, monkeypatch)
        outputs[path] = product.copy()
        add_bias_and_activate(outputs[path], bias, ACTIVATIONS["relu"]())
    np.testing.assert_array_equal(outputs["numba"], outputs["numpy"])
    assert (outputs["numpy"] == 0).any() and (outputs["numpy"] > 0).any()


@pytest.mark.parametrize(
    "window",
    [
        Window((3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
        Window((3, 3), (2, 2), (1, 1), ((0, 1), (0, 1))),
        Window((3, 2), (1, 1), (2, 1), ((2, 2), (0, 1))),
    ],
    ids=str,
)
def test_the_compiled_depthwise_kernel_gradient_is_the_numpy_one(window, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 8, 5)).astype(np.float32)
    dy = rng.standard_normal((3, *window.output_size(x.shape[1:3]), 5)).astype(np.float32)
    gradients = {}
    for path in ("numpy", "numba"):
        on_path(path, monkeypatch)
        gradients[path] = im2col.depthwise_kernel_gradient(x, dy, window)
    assert gradients["numba"].dtype == np.float32
    np.testing.assert_allclose(gradients["numba"], gradients["numpy"], rtol=1e-4, atol=1e-4)
