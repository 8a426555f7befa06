"""Checks of a table's image columns (``type: image``) that span several values: the image options only on an
image column, no fill (every row names a file), channels Pillow converts to, and the model input of its own
each image column feeds (``data.inputs``: the column alone in its group, the input of the column's shape)."""

from __future__ import annotations

from specforge.base.errors import Problem
from specforge.spec import Spec
from specforge.spec.model_io import model_inputs

TABLE_SOURCE = "table"
#: The options only an image column takes.
IMAGE_OPTIONS = ("shape", "rescale")
#: Pillow's modes an image converts to, by channels.
CHANNELS = {1: "grayscale", 3: "RGB", 4: "RGBA"}


def image_column_problems(spec: Spec) -> list[Problem]:
    """Every mistake in how a table's image columns are declared and fed (no data read)."""
    data = spec.config["data"]
    if data.get("source") != TABLE_SOURCE:
        return []
    return _option_problems(spec) + _input_problems(spec)


def _option_problems(spec: Spec) -> list[Problem]:
    problems = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(spec.config["data"]["features"]):
        where, column, kind = ("data", "features", index), feature["column"], feature["type"]
        if kind != "image":
            problems += [
                Problem(
                    f"{option} applies to image columns and column {column!r} is {kind}; add type: image, or leave "
                    f"{option} out",
                    spec.locate((*where, option)),
                )
                for option in IMAGE_OPTIONS
                if option in feature
            ]
            continue
        problems += [
            Problem(
                f"an image column has no missing values to fill (every row names an image file); leave {option} out",
                spec.locate((*where, option)),
            )
            for option in ("fill", "fill_value")
            if option in feature
        ]
        channels = feature["shape"][2]
        if channels not in CHANNELS:
            *others, last = (f"{count} ({mode})" for count, mode in CHANNELS.items())
            choices = f"{', '.join(others)} or {last}"
            problems.append(
                Problem(
                    f"images convert to {choices} channels, not {channels}; use one of them",
                    spec.locate((*where, "shape", 2)),
                )
            )
        if column in seen:
            problems.append(
                Problem(
                    f"image column {column!r} is listed twice (also data.features[{seen[column]}]); an image column "
                    "feeds one model input: list it once",
                    spec.locate((*where, "column")),
                )
            )
        seen.setdefault(column, index)
    return problems


def _input_problems(spec: Spec) -> list[Problem]:
    """Each image column alone in its group of ``data.inputs``, feeding an input of the column's shape."""
    data = spec.config["data"]
    images = {
        feature["column"]: (index, feature["shape"])
        for index, feature in enumerate(data["features"])
        if feature["type"] == "image"
    }
    groups: dict[str, list[str]] = data.get("inputs") or {}
    if not groups:
        return [
            Problem(
                f"image column {column!r} feeds a model input of its own; give model.inputs and data.inputs, with "
                f"the column alone in its group (e.g. data.inputs.{column}: [{column}] and model.inputs.{column}: "
                f"{{shape: {shape}}}) and the other columns in another",
                spec.locate(("data", "features", index)),
            )
            for column, (index, shape) in images.items()
        ]
    shapes = {source.name: (source.shape, source.path) for source in model_inputs(spec.config)}
    problems = []
    for name, group in groups.items():
        taken = [column for column in group if column in images]
        if not taken:
            continue
        column = taken[0]
        shape = images[column][1]
        if len(group) > 1:
            problems.append(
                Problem(
                    f"image column {column!r} feeds a model input of its own and data.inputs.{name} lists "
                    f"{len(group)} columns; give it a group of its own (e.g. {column}: [{column}], with "
                    f"model.inputs.{column}: {{shape: {shape}}}) and keep the other columns in {name}",
                    spec.locate(("data", "inputs", name)),
                )
            )
        elif name in shapes and list(shapes[name][0]) != shape:
            problems.append(
                Problem(
                    f"data.inputs.{name} is image column {column!r} of shape {shape} and the input's shape is "
                    f"{list(shapes[name][0])}; use shape: {shape}",
                    spec.locate((*shapes[name][1], "shape")),
                )
            )
    return problems


__all__ = ["image_column_problems"]
