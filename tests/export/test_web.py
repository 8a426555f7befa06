"""``specforge export RUN --web DIR``: the site it writes, tested in a real headless Chromium (Debian's
``chromium`` package, driven by Playwright) serving the site on 127.0.0.1 the way ``python -m http.server``
would: the first four MNIST test images painted onto the pad read 7 2 1 0, a drawn vertical stroke reads 1,
and the page logs no console errors.  It saves a screenshot in its temporary directory, and also in the
folder ``SPECFORGE_SCREENSHOTS`` names (the README's is made with ``SPECFORGE_SCREENSHOTS=docs``)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from needs import require
from PIL import Image
from text_corpus import trained_run
from typer.testing import CliRunner

from export.models import small_spec
from specforge import api
from specforge.cli.commands import app
from specforge.data import load_dataset
from specforge.predict.run_model import RunPredictor

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = "web-page.png"
#: Seconds Playwright waits for the page (loading the runtime, one prediction).
WAIT_MS = 30_000


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


@pytest.fixture(scope="module")
def site(seed_run, tmp_path_factory):
    directory = tmp_path_factory.mktemp("site") / "digits"
    result = invoke("export", seed_run, "--web", directory)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(f"web page: {directory} (serve it, e.g. python -m http.server")
    return directory


def test_the_site_holds_the_page_the_model_and_the_runtime(site, seed_run):
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()) == [
        "app.js",
        "index.html",
        "model.onnx",
        "ort/LICENSE",
        "ort/VERSION",
        "ort/ort-wasm-simd-threaded.wasm",
        "ort/ort.wasm.bundle.min.mjs",
        "site.json",
        "style.css",
    ]
    assert (site / "model.onnx").read_bytes() == (seed_run / "model.onnx").read_bytes()
    assert json.loads((site / "site.json").read_text()) == {
        "name": "mnist-cnn",
        "classes": [str(d) for d in range(10)],
        "input_shape": [28, 28, 1],
        "mode": "pad",
    }
    assert (site / "ort" / "VERSION").read_text() == "1.30.0\n"
    assert "MIT License" in (site / "ort" / "LICENSE").read_text()
    assert "http" not in (site / "index.html").read_text().replace('href="data:,"', "")


def test_web_refuses_a_model_the_page_cannot_drive(tmp_path):
    spec = small_spec().config | {
        "model": {"input_shape": [784], "layers": [{"type": "Dense", "units": 10, "activation": "softmax"}]},
        "data": {"source": "mnist", "preprocessing": {"reshape": [784]}},
    }
    from specforge.spec import spec_from_dict

    run = api.fit(spec_from_dict(spec), out=tmp_path / "flat", quiet=True, limit_train=64, limit_test=64)
    result = invoke("export", run.path, "--web", tmp_path / "site")
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "--web needs an image model" in line and "[784]" in line
    assert line.startswith(f"{run.path / 'spec.yaml'}:") and ": model.input_shape: " in line
    assert not (tmp_path / "site").exists() and not (run.path / "model.onnx").exists()


def test_web_names_the_run_whose_preprocessing_was_left_out(seed_run, tmp_path):
    result = invoke("export", seed_run, "--web", tmp_path / "site", "--no-preprocessing", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{seed_run}: error: --web feeds raw pixels, so the model must hold its preprocessing: "
        "leave out --no-preprocessing\n"
    )


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_the_site_is_created_with_the_permissions_the_umask_gives(seed_run, tmp_path, umask):
    previous = os.umask(umask)
    try:
        result = invoke("export", seed_run, "--web", tmp_path / "site" / "digits", "-o", tmp_path / "m.onnx")
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    for folder in (tmp_path / "site", tmp_path / "site" / "digits", tmp_path / "site" / "digits" / "ort"):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder
    assert (tmp_path / "site" / "digits" / "index.html").stat().st_mode & 0o777 == 0o666 & ~umask


@contextlib.contextmanager
def static_server(directory: Path):
    """``directory`` on a free 127.0.0.1 port, served as ``python -m http.server`` serves it."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def server(site):
    with static_server(site) as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright is not None, "playwright (pip install 'specforge[test]')")
    require(CHROMIUM.is_file(), "chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@contextlib.contextmanager
def opened(browser, url: str):
    """The page at ``url``, loaded and ready, with every console error, uncaught exception, failed request
    and request leaving ``url`` collected in ``page.errors``."""
    page = browser.new_page(viewport={"width": 760, "height": 460})
    page.errors = []
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("requestfailed", lambda request: page.errors.append(f"{request.url} failed"))
    page.route(
        lambda address: not address.startswith(url),
        lambda route: (page.errors.append(route.request.url), route.abort()),
    )
    try:
        page.goto(url)
        page.wait_for_selector("body[data-state=ready]", timeout=WAIT_MS)
        yield page
    finally:
        page.close()


@pytest.fixture
def page(browser, server):
    with opened(browser, server) as page:
        yield page


def predicted(page, action) -> list[str]:
    """The classes the page lists (best first) once the update that ``action`` starts has finished."""
    runs = int(page.get_attribute("body", "data-runs"))
    action()
    page.wait_for_function(
        f"document.body.dataset.runs > {runs} && document.body.dataset.state === 'ready'", timeout=WAIT_MS
    )
    return page.eval_on_selector_all("#top li", "items => items.map(item => item.dataset.class)")


def png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_page_reads_the_first_test_digits_and_a_drawn_stroke(page, tmp_path):
    test = load_dataset({"source": "mnist"}, (28, 28, 1), validation="none", base_dir=Path(".")).test
    read = []
    for index in range(4):
        image = {
            "name": f"test-{index}.png",
            "mimeType": "image/png",
            "buffer": png(test.images[index].reshape(28, 28)),
        }
        read.append(predicted(page, functools.partial(page.set_input_files, "#file", image))[0])
    assert read == ["7", "2", "1", "0"]
    assert [int(test.labels[i]) for i in range(4)] == [7, 2, 1, 0]

    classes = predicted(page, lambda: page.click("#clear"))
    assert classes == []
    box = page.locator("#pad").bounding_box()
    x = box["x"] + box["width"] / 2

    def stroke():
        page.mouse.move(x, box["y"] + 0.15 * box["height"])
        page.mouse.down()
        for step in range(1, 11):
            page.mouse.move(x, box["y"] + (0.15 + 0.07 * step) * box["height"])
        page.mouse.up()

    classes = predicted(page, stroke)
    assert len(classes) == 3 and classes[0] == "1"
    bars = page.eval_on_selector_all("#top .bar span", "bars => bars.map(bar => parseFloat(bar.style.width))")
    assert bars == sorted(bars, reverse=True) and 0 < sum(bars) <= 100.01
    assert page.errors == []
    page.screenshot(path=str(tmp_path / SCREENSHOT), full_page=True)
    assert Image.open(tmp_path / SCREENSHOT).size[0] == 760
    if os.environ.get("SPECFORGE_SCREENSHOTS"):
        folder = Path(os.environ["SPECFORGE_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / SCREENSHOT, folder / SCREENSHOT)


def test_the_page_names_the_model_and_heads_its_classes(page):
    assert page.inner_text("h1") == "mnist-cnn" and page.title() == "mnist-cnn: image classifier"
    assert page.is_visible(".kicker") and "classifier" in page.inner_text(".kicker").lower()
    heading = page.locator("#output-heading")
    assert heading.inner_text() == "Most likely classes"
    assert page.is_visible("#empty") and page.eval_on_selector_all("#top li", "items => items.length") == 0
    classes = predicted(
        page,
        lambda: page.set_input_files(
            "#file", {"name": "seven.png", "mimeType": "image/png", "buffer": png(first_digits(1)[0])}
        ),
    )
    assert classes[0] == "7" and page.is_hidden("#empty")
    assert heading.bounding_box()["y"] + heading.bounding_box()["height"] <= page.locator("#top").bounding_box()["y"]
    assert page.errors == []


def pad_ink(page) -> int:
    """Pad pixels that are not the empty pad's black."""
    return page.evaluate("""() => {
        const pad = document.getElementById('pad');
        const data = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
        let ink = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 0) ink++;
        return ink;
    }""")


def test_an_unreadable_file_clears_the_image_and_classes_and_keeps_the_layout(page):
    """The error stands alone (no earlier digit and its classes beside it), and its line, wider than the classes,
    neither widens the output nor, once a digit is drawn again, its bars."""
    image = {"name": "seven.png", "mimeType": "image/png", "buffer": png(first_digits(1)[0])}
    assert predicted(page, lambda: page.set_input_files("#file", image))[0] == "7"
    output = {key: value for key, value in page.locator(".output").bounding_box().items() if key != "height"}
    bar = page.locator("#top li:first-child .bar").bounding_box()
    assert pad_ink(page) > 0
    page.set_input_files("#file", {"name": "broken.png", "mimeType": "image/png", "buffer": b"not a picture"})
    page.wait_for_function("document.getElementById('status').textContent !== ''", timeout=WAIT_MS)
    assert page.inner_text("#status") == "broken.png is not an image this browser can read."
    assert page.eval_on_selector_all("#top li", "items => items.length") == 0 and page.is_visible("#empty")
    assert pad_ink(page) == 0
    assert {key: value for key, value in page.locator(".output").bounding_box().items() if key != "height"} == output
    assert predicted(page, lambda: page.set_input_files("#file", image))[0] == "7"
    assert page.inner_text("#status") == ""
    assert page.locator("#top li:first-child .bar").bounding_box() == bar
    page.set_input_files("#file", {"name": "broken.png", "mimeType": "image/png", "buffer": b"not a picture"})
    page.wait_for_function("document.getElementById('status').textContent !== ''", timeout=WAIT_MS)
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
    page.mouse.down()
    page.mouse.up()
    assert page.inner_text("#status") == ""  # drawing again puts the error away
    assert page.errors == []


def first_digits(count: int) -> list[np.ndarray]:
    """The first MNIST test images, 28x28 uint8."""
    test = load_dataset({"source": "mnist"}, (28, 28, 1), validation="none", base_dir=Path(".")).test
    return [test.images[index].reshape(28, 28) for index in range(count)]


def drop(page, name: str, data: bytes) -> None:
    """Drop a PNG file onto the pad, as a drag from the desktop would."""
    page.evaluate(
        """([name, bytes]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
        document.getElementById('pad').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
    }""",
        [name, list(data)],
    )


def test_the_pad_takes_a_dropped_image(page):
    test = load_dataset({"source": "mnist"}, (28, 28, 1), validation="none", base_dir=Path(".")).test
    dark_on_light = 255 - test.images[1].reshape(28, 28)
    assert predicted(page, lambda: drop(page, "two.png", png(dark_on_light)))[0] == "2"
    assert page.errors == []


def colour_folder(root: Path, count: int) -> Path:
    """Images of two classes, mostly red or mostly blue, with noise, in image-folder layout."""
    rng = np.random.default_rng(len(str(root)))
    for name, channel in (("blue", 2), ("red", 0)):
        (root / name).mkdir(parents=True)
        for index in range(count):
            pixels = rng.integers(0, 90, size=(16, 16, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, size=(16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def test_a_colour_model_gets_a_file_picker_and_takes_dropped_images(browser, tmp_path):
    from specforge.spec import spec_from_dict

    spec = spec_from_dict(
        {
            "version": 1,
            "name": "colours",
            "data": {
                "source": "image_folder",
                "train": str(colour_folder(tmp_path / "train", 24)),
                "test": str(colour_folder(tmp_path / "test", 8)),
                "preprocessing": {"rescale": 1 / 255},
            },
            "model": {
                "input_shape": [16, 16, 3],
                "layers": [
                    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 2, "activation": "softmax"},
                ],
            },
            "compile": {"optimizer": "adam", "loss": "categorical_crossentropy"},
            "fit": {"epochs": 5, "batch_size": 8, "seed": 0},
        }
    )
    run = api.fit(spec, out=tmp_path / "run", quiet=True)
    assert run.metrics["accuracy"] == 1.0
    result = invoke("export", run.path, "--web", tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "site" / "site.json").read_text())["mode"] == "picture"
    red = np.zeros((30, 40, 3), dtype=np.uint8)
    red[..., 0] = 220
    blue = np.zeros((20, 20, 3), dtype=np.uint8)
    blue[..., 2] = 200
    with static_server(tmp_path / "site") as url, opened(browser, url) as page:
        assert page.is_hidden("#clear")
        image = {"name": "red.png", "mimeType": "image/png", "buffer": png(red)}
        assert predicted(page, lambda: page.set_input_files("#file", image))[0] == "1"
        assert page.inner_text("#top li:first-child .name") == "red"
        assert predicted(page, lambda: drop(page, "blue.png", png(blue)))[0] == "0"
        assert page.inner_text("#top li:first-child .name") == "blue"
        assert page.errors == []


def test_a_text_model_gets_a_text_box_whose_classes_follow_the_typing(browser, tmp_path):
    """The page of a text model feeds the typed text to the model's graph, which vectorizes it: its best class is
    the run's numpy model's (with the saved vocabulary) for the same text, and an empty box lists nothing."""
    run = trained_run(tmp_path, vectorize={"output_sequence_length": 16, "ngrams": 2, "max_tokens": 32})
    result = invoke("export", run.path, "--web", tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "site" / "site.json").read_text())["mode"] == "text"
    texts = ["Stir the SUGAR, then bake!", "The referee's GOAL... for the team", "oven? flour! dough."]
    expected = RunPredictor(run.path).run(np.array(texts, dtype=object)).argmax(axis=1)
    assert sorted(set(expected)) == [0, 1]
    with static_server(tmp_path / "site") as url, opened(browser, url) as page:
        assert page.is_hidden("#pad") and page.is_visible("#text")
        assert (
            page.title() == "bag: text classifier"
            and page.text_content(".kicker") == "Text classifier, running in your browser"
        )
        for text, best in zip(texts, expected):
            assert predicted(page, lambda text=text: page.fill("#text", text))[0] == str(best)
        assert page.inner_text("#top li:first-child .name") == ["cooking", "sport"][expected[-1]]
        assert predicted(page, lambda: page.fill("#text", "  ")) == [] and page.is_visible("#empty")
        assert page.errors == []


def test_web_names_the_text_run_whose_vectorization_was_left_out(tmp_path):
    run = trained_run(tmp_path, epochs=1)
    result = invoke("export", run.path, "--web", tmp_path / "site", "--no-preprocessing", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"{run.path}: error: --web feeds the text typed in the box, so the model must hold its vectorization: "
        "leave out --no-preprocessing\n"
    )
    assert not (tmp_path / "site").exists() and not (tmp_path / "m.onnx").exists()


def test_a_two_output_models_page_lists_each_outputs_classes_under_its_name(browser, tmp_path):
    """The page of mnist's digit and parity lists both outputs' classes, each under its name: the digit's best
    class and parity's (its one sigmoid unit read as classes 0 and 1) are those onnxruntime gives for the same
    digit, and a cleared pad empties both lists."""
    from test_multi_io import _two_output_spec

    from specforge.predict.session import OnnxPredictor
    from specforge.spec import spec_from_dict

    spec = _two_output_spec()
    spec["data"]["preprocessing"]["reshape"] = [28, 28, 1]
    spec["model"]["input_shape"] = [28, 28, 1]
    spec["model"]["layers"][0]["units"] = 64
    spec["model"]["layers"].insert(0, {"type": "Flatten"})
    run = api.fit(spec_from_dict(spec), out=tmp_path / "run", quiet=True, limit_train=4096, limit_test=64)
    result = invoke("export", run.path, "--web", tmp_path / "site")
    assert result.exit_code == 0, result.output
    site = json.loads((tmp_path / "site" / "site.json").read_text())
    assert site["mode"] == "pad" and [output["name"] for output in site["outputs"]] == ["digit", "parity"]
    assert site["outputs"][1]["classes"] == ["0", "1"]
    model = OnnxPredictor(tmp_path / "site" / "model.onnx")
    digits = first_digits(4)
    scores = model.session.run(
        ["digit", "parity"], {"input": np.stack(digits).reshape(4, 28, 28, 1).astype(np.float32)}
    )
    with static_server(tmp_path / "site") as url, opened(browser, url) as page:
        assert page.eval_on_selector_all(".head h3", "names => names.map(name => name.textContent)") == [
            "digit",
            "parity",
        ]
        for index, digit in enumerate(digits):
            image = {"name": f"test-{index}.png", "mimeType": "image/png", "buffer": png(digit)}
            predicted(page, functools.partial(page.set_input_files, "#file", image))
            shown = page.eval_on_selector_all(
                ".head", "heads => heads.map(head => [...head.querySelectorAll('li')].map(li => li.dataset.class))"
            )
            assert len(shown[0]) == 3 and sorted(shown[1]) == ["0", "1"]
            assert shown[0][0] == str(scores[0][index].argmax())
            assert shown[1][0] == str(int(scores[1][index, 0] > 0.5))
        assert predicted(page, lambda: page.click("#clear")) == []
        assert page.eval_on_selector_all(".head li", "items => items.length") == 0 and page.is_visible("#empty")
        assert page.errors == []
