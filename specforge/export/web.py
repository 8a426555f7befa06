"""``specforge export RUN --web DIR``: a static site that runs the exported model in the browser.

The site is the page (``index.html``, ``app.js``, ``style.css``), ``model.onnx``, ``site.json`` (name,
class names, input shape, mode; a model of several outputs' names and class names, each listed under its name) and the onnxruntime-web runtime in ``ort/`` (the WebAssembly-only build,
shipped in this package with its licence: no CDN, it works offline from any static server).  One-channel
28x28 models get a drawing pad; other image models a file picker with drag and drop; a text model a text box
whose predictions follow the typing.  The page feeds raw pixels or the raw text, so the model must hold its
preprocessing (the default export).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from specforge.base.errors import ExportError
from specforge.base.fileio import staging_folder

ASSETS = Path(__file__).with_name("web")
PAGE_FILES = ("index.html", "app.js", "style.css")
RUNTIME_DIR = "ort"
SITE_FILE = "site.json"
MODEL_FILE = "model.onnx"
#: The input a drawing pad serves: MNIST's one-channel 28x28 digits.
PAD_SHAPE = (28, 28, 1)


def page_mode(input_shape: Sequence[int], preprocessing_in_graph: bool, *, run: str, text: bool = False) -> str:
    """``text`` for a text model, ``pad`` or ``picture`` for a model taking ``input_shape`` (H, W, C); ExportError
    for a model the page cannot drive: at ``model.input_shape`` (for the run's spec to place), or naming the
    ``run`` directory the options were given for."""
    if text:
        if not preprocessing_in_graph:
            raise ExportError(
                "--web feeds the text typed in the box, so the model must hold its vectorization: leave out "
                "--no-preprocessing",
                file=run,
            )
        return "text"
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ExportError(
            f"--web needs an image model (input [H, W, 1] or [H, W, 3]); this model takes "
            f"[{', '.join(map(str, shape))}]: export it with --onnx and feed it from your own code",
            path="model.input_shape",
        )
    if not preprocessing_in_graph:
        raise ExportError(
            "--web feeds raw pixels, so the model must hold its preprocessing: leave out --no-preprocessing", file=run
        )
    return "pad" if shape == PAD_SHAPE else "picture"


def write_site(
    directory: str | Path,
    model: bytes,
    *,
    name: str,
    class_names: Sequence[str],
    input_shape: Sequence[int],
    mode: str,
    outputs: dict[str, list[str]] | None = None,
) -> Path:
    """Write the site into ``directory`` (created, or its files replaced): built in a temporary folder
    beside it first, so a failure leaves no half-written site. ``outputs``: a model of several outputs' class
    names, by output name, each output listed by the page under its name."""
    directory = Path(directory)
    staging = staging_folder(directory)
    try:
        (staging / RUNTIME_DIR).mkdir()
        runtime = [f"{RUNTIME_DIR}/{path.name}" for path in sorted((ASSETS / RUNTIME_DIR).iterdir())]
        for asset in (*PAGE_FILES, *runtime):  # copied without their installed modes: the umask decides
            shutil.copyfile(ASSETS / asset, staging / asset)
        (staging / MODEL_FILE).write_bytes(model)
        (staging / SITE_FILE).write_text(
            json.dumps(
                {
                    "name": name,
                    "classes": list(class_names),
                    "input_shape": [int(d) for d in input_shape],
                    "mode": mode,
                    **(
                        {"outputs": [{"name": output, "classes": names} for output, names in outputs.items()]}
                        if outputs
                        else {}
                    ),
                },
                indent=2,
            )
            + "\n"
        )
        _move_into(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _move_into(staging: Path, directory: Path) -> None:
    if not directory.exists():
        os.replace(staging, directory)
        return
    if not directory.is_dir():
        raise ExportError("--web needs a directory, and this is a file", file=str(directory))
    for entry in staging.iterdir():
        target = directory / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
