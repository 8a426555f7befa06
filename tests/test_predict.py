"""``specforge predict``: images (both polarities), arrays, data splits, JSON lines, top-k, files, errors.

Every prediction is checked against the numpy model's forward on the same raw values.
"""

from __future__ import annotations

import csv
import json
import struct
import zlib

import numpy as np
import pytest
import yaml
from export.models import SPECS_DIR, export_spec, small_spec
from PIL import Image
from typer.testing import CliRunner

from specforge import api
from specforge.base.errors import DataError
from specforge.cli.commands import app
from specforge.data import read_image
from specforge.predict.images import OnnxPredictor
from tests.test_cli_train import specforge


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(path of the exported small CNN, its numpy model, the MNIST test images and labels)``."""
    model, _, numpy_model, dataset, _ = export_spec(small_spec())
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    path.write_bytes(model.SerializeToString())
    return path, numpy_model, dataset


def expected(exported, raw: np.ndarray) -> np.ndarray:
    """The numpy model's probabilities for raw images."""
    _, numpy_model, dataset = exported
    return numpy_model.forward(dataset.preprocessing.images(raw))


def cli(*args: str):
    return CliRunner().invoke(app, ["predict", *map(str, args)])


def probabilities(report) -> np.ndarray:
    return np.array([p.top[0][2] for p in report.predictions])


def test_png_files_in_either_polarity(exported, tmp_path):
    path, _, dataset = exported
    digits = dataset.test.images[:3]
    files = []
    for i, digit in enumerate(digits):
        Image.fromarray(digit).save(tmp_path / f"white_on_black_{i}.png")
        Image.fromarray(255 - digit).save(tmp_path / f"black_on_white_{i}.png")
        files += [tmp_path / f"white_on_black_{i}.png", tmp_path / f"black_on_white_{i}.png"]
    report = api.predict_onnx(path, files)
    want = expected(exported, np.repeat(digits, 2, axis=0))
    assert [p.source for p in report.predictions] == [f.name for f in files]
    assert [p.predicted for p in report.predictions] == list(want.argmax(axis=1))
    np.testing.assert_allclose(probabilities(report), want.max(axis=1), rtol=1e-4, atol=1e-5)
    assert [p.inverted for p in report.predictions] == [False, True] * 3

    kept = api.predict_onnx(path, files[1:2], invert=False)
    np.testing.assert_allclose(
        kept.predictions[0].top[0][2], expected(exported, 255 - digits[:1]).max(), rtol=1e-4, atol=1e-5
    )
    assert not kept.predictions[0].inverted


def test_images_are_converted_as_image_folders_convert_them(exported, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 100, (40, 33, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    report = api.predict_onnx(exported[0], [tmp_path / "photo.jpg"])
    want = expected(exported, read_image(tmp_path / "photo.jpg", (28, 28, 1))[None])
    np.testing.assert_allclose(report.predictions[0].top[0][2], want.max(), rtol=1e-4, atol=1e-5)


def test_arrays_in_every_accepted_shape(exported, tmp_path):
    images = exported[2].test.images[:5]
    np.save(tmp_path / "batch.npy", images)
    np.save(tmp_path / "channels.npy", images[..., None].astype(np.float32))
    np.save(tmp_path / "one.npy", images[0])
    np.savez(tmp_path / "archive.npz", x_test=images[:2], y_test=np.arange(2))
    report = api.predict_onnx(
        exported[0], [tmp_path / name for name in ("batch.npy", "channels.npy", "one.npy", "archive.npz")]
    )
    assert [p.source for p in report.predictions] == (
        [f"batch.npy[{i}]" for i in range(5)]
        + [f"channels.npy[{i}]" for i in range(5)]
        + ["one.npy"]
        + ["archive.npz[0]", "archive.npz[1]"]
    )
    want = expected(exported, np.concatenate([images, images, images[:1], images[:2]]))
    np.testing.assert_allclose(probabilities(report), want.max(axis=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("data", ["mnist:test", f"{SPECS_DIR / 'mnist.yaml'}:test"])
def test_data_splits_come_with_labels(exported, data):
    path, _, dataset = exported
    report = api.predict_onnx(path, data=data, limit=20)
    want = expected(exported, dataset.test.images[:20]).argmax(axis=1)
    assert [p.source for p in report.predictions] == [f"test[{i}]" for i in range(20)]
    assert [p.predicted for p in report.predictions] == list(want)
    assert [p.label for p in report.predictions] == list(dataset.test.labels[:20])
    assert report.accuracy == np.mean(want == dataset.test.labels[:20])


def test_a_spec_validation_split_is_the_one_training_and_evaluate_hold_out(exported, tmp_path):
    from specforge.data.loading import load_data

    config = small_spec().config
    config["fit"]["validation"] = 0.1
    spec = tmp_path / "held-out.yaml"
    spec.write_text(yaml.safe_dump(config))
    report = api.predict_onnx(exported[0], data=f"{spec}:validation", limit=8)
    validation = load_data(config, tmp_path, {}).validation
    assert [p.source for p in report.predictions] == [f"validation[{i}]" for i in range(8)]
    assert [p.label for p in report.predictions] == list(validation.labels[:8])
    assert [p.predicted for p in report.predictions] == list(expected(exported, validation.images[:8]).argmax(axis=1))


NO_VALIDATION = "has no validation split; use one of: train, test"


@pytest.mark.parametrize(
    "data, where",
    [
        ("SPEC:validation", f"SPEC: error: the data of 'SPEC' {NO_VALIDATION}"),
        ("mnist:validation", f"--data mnist:validation: error: the data of 'mnist' {NO_VALIDATION}"),
        ("mnist", "--data mnist: error: --data 'mnist' is not SOURCE:SPLIT"),
    ],
)
def test_a_missing_split_names_where_it_was_asked_for(exported, tmp_path, data, where):
    config = small_spec().config
    config["fit"]["validation"] = "none"
    spec = tmp_path / "no-validation.yaml"
    spec.write_text(yaml.safe_dump(config))
    result = cli(exported[0], "--data", data.replace("SPEC", str(spec)))
    assert result.exit_code == 2
    assert result.stderr.startswith(where.replace("SPEC", str(spec))), result.stderr


def test_text_output_with_labels_and_accuracy(exported):
    path, _, dataset = exported
    result = cli(path, "--data", "mnist:test", "--limit", "4")
    assert result.exit_code == 0, result.output
    want = expected(exported, dataset.test.images[:4])
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    for i, line in enumerate(lines[:4]):
        label = dataset.test.labels[i]
        cls = want[i].argmax()
        assert line.split() == [
            f"test[{i}]",
            str(cls),
            f"{want[i].max():.4f}",
            "true",
            str(label),
            *(["(wrong)"] if cls != label else []),
        ]
    right = int(np.sum(want.argmax(axis=1) == dataset.test.labels[:4]))
    assert lines[4] == f"accuracy: {right / 4:.4f} ({right}/4)"


def test_json_lines_with_top_k(exported, tmp_path):
    path, _, dataset = exported
    np.save(tmp_path / "batch.npy", dataset.test.images[:6])
    result = cli(path, tmp_path / "batch.npy", "--json", "--top-k", "3", "--batch-size", "4", "--threads", "1")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    want = expected(exported, dataset.test.images[:6])
    for i, record in enumerate(records):
        order = np.argsort(-want[i])[:3]
        assert [entry["class"] for entry in record["top_k"]] == list(order)
        assert [entry["name"] for entry in record["top_k"]] == [str(c) for c in order]
        np.testing.assert_allclose(
            [entry["probability"] for entry in record["top_k"]], want[i][order], rtol=1e-4, atol=1e-5
        )
        assert (record["source"], record["class"]) == (f"batch.npy[{i}]", order[0])
        assert "label" not in record


def test_output_files(exported, tmp_path):
    path, _, dataset = exported
    result = cli(path, "--data", "mnist:test", "--limit", "5", "--top-k", "2", "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"wrote 5 predictions to {tmp_path / 'p.csv'}"
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    want = expected(exported, dataset.test.images[:5])
    assert list(rows[0]) == [
        "source",
        "class",
        "name",
        "probability",
        "class_2",
        "name_2",
        "probability_2",
        "label",
        "correct",
    ]
    assert [int(row["class_2"]) for row in rows] == list(np.argsort(-want, axis=1)[:, 1])
    assert [int(row["label"]) for row in rows] == list(dataset.test.labels[:5])

    assert cli(path, "--data", "mnist:test", "--limit", "5", "--output", tmp_path / "p.json").exit_code == 0
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["count"] == 5 and len(saved["predictions"]) == 5
    assert [p["class"] for p in saved["predictions"]] == list(want.argmax(axis=1))


def test_preprocessing_outside_the_graph_is_applied_by_predict(exported, tmp_path):
    model, *_ = export_spec(small_spec(), in_graph=False)
    (tmp_path / "plain.onnx").write_bytes(model.SerializeToString())
    report = api.predict_onnx(tmp_path / "plain.onnx", data="mnist:test", limit=8)
    want = expected(exported, exported[2].test.images[:8])
    np.testing.assert_allclose(probabilities(report), want.max(axis=1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "shape,message",
    [
        (
            (3, 32, 32),
            (
                "an array of shape (3, 32, 32) does not fit the model's input [N, 28, 28, 1]; "
                "give (N, 28, 28, 1) or (N, 28, 28), or one example without N"
            ),
        ),
        ((28, 28, 3), "an array of shape (28, 28, 3) does not fit the model's input [N, 28, 28, 1]"),
    ],
)
def test_arrays_that_do_not_fit_are_one_line_errors(exported, tmp_path, shape, message):
    np.save(tmp_path / "wrong.npy", np.zeros(shape, np.uint8))
    result = cli(exported[0], tmp_path / "wrong.npy")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"{tmp_path / 'wrong.npy'}: error: {message}")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--data", "mnist:test", "--top-k", "11"], "--top-k 11 is not between 1 and the model's 10 classes"),
        (["--data", "mnist"], "--data 'mnist' is not SOURCE:SPLIT or SPEC:SPLIT"),
        ([], "nothing to predict"),
        (["notes.txt"], "notes.txt: error: cannot predict on a .txt file"),
        (["--text", "seven"], "error: --text and --column are for a text model; this model takes images or arrays"),
        (["--data", "mnist:test", "--column", "review"], "--text and --column are for a text model"),
    ],
)
def test_usage_errors(exported, tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("7")
    result = CliRunner().invoke(
        app, ["predict", str(exported[0]), *[str(tmp_path / a) if a.endswith(".txt") else a for a in args]]
    )
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot load as an ONNX model"):
        OnnxPredictor(tmp_path / "model.onnx")


def test_the_session_uses_the_threads_asked_for(exported):
    options = OnnxPredictor(exported[0], threads=1).session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)


def test_the_seed_tutorial_end_to_end(tmp_path, monkeypatch):
    """train (briefly) -> export -> predict the first four test images: 7 2 1 0, as the tutorial."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    trained = runner.invoke(
        app,
        [
            "train",
            str(SPECS_DIR / "mnist.yaml"),
            "--set",
            "fit.epochs=1",
            "--limit-train",
            "1000",
            "--limit-test",
            "256",
            "--quiet",
        ],
    )
    assert trained.exit_code == 0, trained.output
    exported = runner.invoke(app, ["export", "runs/mnist-cnn/1", "--onnx"])
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.splitlines()[0].startswith("parity: 256 examples of mnist test[0:256]: max abs difference")
    assert exported.stdout.splitlines()[0].endswith("classes agree on 256/256")
    assert exported.stdout.splitlines()[1].startswith("model: runs/mnist-cnn/1/model.onnx (opset 13, IR 7, ")
    result = cli("runs/mnist-cnn/1/model.onnx", "--data", "mnist:test", "--limit", "4")
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()[:4]] == ["7", "2", "1", "0"]


def test_a_directory_is_named_as_one_with_the_file_that_would_work(exported, tmp_path):
    (tmp_path / "model.onnx").write_bytes(exported[0].read_bytes())
    result = cli(tmp_path, "--data", "mnist:test")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{tmp_path}: error: is a directory, not an ONNX file; give {tmp_path / 'model.onnx'}"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "give the .onnx file specforge export wrote" in cli(empty, "--data", "mnist:test").output


def test_a_model_from_elsewhere_is_refused_unless_its_inputs_are_given_raw(exported, tmp_path):
    import onnx

    model = onnx.load(exported[0])
    del model.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(model.SerializeToString())
    images = exported[2].test.images[:4]
    np.save(tmp_path / "x.npy", images)
    result = cli(foreign, tmp_path / "x.npy")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith(f"{foreign}: error: the model has no specforge metadata")
    assert "already scaled as the model expects with --raw" in result.output
    raw = np.asarray(images, np.float32).reshape(4, *OnnxPredictor(foreign).input_shape)
    np.save(tmp_path / "raw.npy", raw)
    report = api.predict_onnx(foreign, [tmp_path / "raw.npy"], raw=True)
    want = api.predict_onnx(exported[0], [tmp_path / "x.npy"])
    assert [p.predicted for p in report.predictions] == [p.predicted for p in want.predictions]


def blank_png(path, width: int, height: int):
    """A valid black one-bit PNG of ``width`` x ``height``, compressed row by row: Pillow would hold the whole
    image in memory to write it (400 MB for 20000 x 20000); this holds one row, and the file is tens of KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)  # filter type 0, then the row's bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """PNG files of 20000 x 20000 (beyond twice Pillow's bound: its error) and 12000 x 12000 (beyond the bound,
    below twice it: its warning) pixels."""
    folder = tmp_path_factory.mktemp("bombs")
    return [blank_png(folder / f"{side}.png", side, side) for side in (20000, 12000)]


def test_the_blank_png_is_what_pillow_reads(tmp_path):
    with Image.open(blank_png(tmp_path / "small.png", 13, 5)) as image:
        assert (image.size, image.mode) == ((13, 5), "1")
        assert not np.asarray(image).any()
    assert Image.MAX_IMAGE_PIXELS < 12000**2 < 2 * Image.MAX_IMAGE_PIXELS < 20000**2


@pytest.mark.parametrize("index", [0, 1], ids=["20000x20000", "12000x12000"])
def test_an_image_beyond_the_pixel_bound_is_one_line_before_decoding(exported, bombs, index):
    bomb = bombs[index]
    assert bomb.stat().st_size < 100_000
    result = specforge("predict", exported[0], bomb, cwd=bomb.parent)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"{bomb}: error: the image has more than {Image.MAX_IMAGE_PIXELS:,} pixels (Pillow's "
        "guard against decompression bombs); scale it down below that, e.g. to the model's "
        "28x28\n"
    )
