"""Image augmentation with Keras 3's layers, options and defaults: RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomCrop, RandomContrast, RandomBrightness.

They change the images during training only and are the identity at inference (RandomCrop excepted: at
inference it takes the largest centred window with the target's aspect ratio and resizes it to the target
size, as Keras does), so the exported graph holds nothing of them but RandomCrop's crop and resize.
Their random draws come from the generator training passes to ``forward`` (spawned from ``fit.seed`` and
saved in every checkpoint), so reruns and resumed runs see the same augmented batches, bit for bit.

They may only come first: each takes the model's input or another augmentation layer's output
(``specforge.graph.augmentation_checks``), where no gradient needs to flow into them.  Given the draws, every
transform is linear in the image (plus a constant, and clipped for contrast and brightness), so the backward
pass is exact all the same: the generic gradient tests hold for them as for every kind.

Geometric transforms follow Keras 3's affine matrices: output pixel ``(row, col)`` reads the input at
``(a3 col + a4 row + a5, a0 col + a1 row + a2)``, interpolated (bilinear or nearest) from the pixels around it;
pixels outside the image are read as ``fill_mode`` says (reflect: ``d c b a | a b c d | d c b a``; wrap:
``a b c d | a b c d``; nearest: ``a a | a b c d | d d``; constant: ``fill_value``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from specforge.base.layout import NCHW
from specforge.layers.base import Layer, Shape, shape_error
from specforge.layers.upsampling import _RESIZE_ATTRIBUTES


def _factor(description: str, minimum: float = -1.0, maximum: float = 1.0, default: Any = None) -> dict:
    """Keras' ``float or (lower, upper)`` factor option."""
    schema: dict = {
        "description": description,
        "oneOf": [
            {"type": "number", "minimum": minimum, "maximum": maximum},
            {
                "type": "array",
                "items": {"type": "number", "minimum": minimum, "maximum": maximum},
                "minItems": 2,
                "maxItems": 2,
            },
        ],
    }
    if default is not None:
        schema["default"] = default
    return schema


def _nullable(schema: dict) -> dict:
    """``schema`` that also takes null, its default."""
    return {**schema, "oneOf": [*schema["oneOf"], {"type": "null"}], "default": None}


def _bounds(value: float | list[float]) -> tuple[float, float]:
    """A factor as ``(lower, upper)``: a single number ``f`` is ``(-f, f)``, as Keras reads it."""
    if isinstance(value, (int, float)):
        return (-abs(float(value)), abs(float(value)))
    return (float(min(value)), float(max(value)))


_GEOMETRY: dict[str, dict] = {
    "fill_mode": {
        "enum": ["reflect", "wrap", "constant", "nearest"],
        "default": "reflect",
        "description": "How pixels outside the image are read: reflect (d c b a | a b c d | d c b a), "
        "wrap (a b c d | a b c d), constant (fill_value), nearest (a a | a b c d | d d).",
    },
    "interpolation": {
        "enum": ["bilinear", "nearest"],
        "default": "bilinear",
        "description": "How a pixel between input pixels is computed.",
    },
    "fill_value": {
        "type": "number",
        "default": 0.0,
        "description": "The value read outside the image when fill_mode is constant.",
    },
}
_VALUE_RANGE: dict[str, dict] = {
    "value_range": {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
        "default": [0, 255],
        "description": "The range of the input values, [low, high]; outputs are clipped to it. Keras' "
        "default [0, 255] is that of raw pixels: use [0, 1] after rescale: 1/255.",
    },
}


class Augmentation(Layer):
    """A layer active in training only; ``transform`` does the work with draws from the run's generator."""

    #: marks the kinds that may only come first in a model (``specforge.graph.augmentation_checks``)
    augments: ClassVar[bool] = True

    def output_shape(self, input_shape: Shape) -> Shape:
        return require_image_input(self.type, input_shape)

    def forward(self, params, x, training=False, rng=None, activation=None):
        self.output_shape(x.shape[1:])
        if not training:
            return self.infer(x)
        if rng is None:
            raise ValueError(f"{self.type} in training needs a random generator")
        return self.transform(x, rng)

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """``(y, cache)`` at inference: the input itself (a None cache: the gradient passes unchanged)."""
        return x, None

    def transform(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        """``(y, cache)`` for a training batch."""
        raise NotImplementedError

    def backward(self, params, cache, dy, need_dx=True):
        if not need_dx:
            return None, {}
        return (dy if cache is None else self.transform_backward(cache, dy)), {}

    def transform_backward(self, cache: Any, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_onnx(self, builder, params, input_name):
        return input_name

    def to_torch(self, node, params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import Augmentation

        return Augmentation(node, params)


def augment(layers: list[Layer], x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` through ``layers`` (augmentation layers, in order) as training would put it, with draws from ``rng``."""
    for layer in layers:
        x = layer.forward({}, x, training=True, rng=rng)[0]
    return x


def require_image_input(layer_type: str, input_shape: Shape) -> tuple[int, int, int]:
    """``(height, width, channels)``; ShapeError saying augmentation takes the model's images."""
    if len(input_shape) != 3:
        raise shape_error(
            f"{layer_type} augments images (height, width, channels), got shape {tuple(input_shape)}; "
            "use it on an image input (model.input_shape [height, width, channels])"
        )
    height, width, channels = (int(n) for n in input_shape)
    return height, width, channels


# -- flips -------------------------------------------------------------------------------------------
class RandomFlip(Augmentation):
    type = "RandomFlip"
    description = (
        "During training, flips each image left-right and/or upside down, each with probability 1/2; "
        "the identity at inference."
    )
    schema = {
        "mode": {
            "enum": ["horizontal", "vertical", "horizontal_and_vertical"],
            "default": "horizontal_and_vertical",
            "description": "Which flips: horizontal (left-right), vertical (upside down), or both, each "
            "drawn on its own.",
        },
    }
    examples = [({}, (4, 3, 2)), ({"mode": "horizontal"}, (3, 5, 1))]

    def transform(self, x, rng):
        mode = self.config["mode"]
        axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[mode]
        flips = {axis: rng.random(len(x)) < 0.5 for axis in axes}
        return self._flip(x, flips), flips

    @staticmethod
    def _flip(x: np.ndarray, flips: dict[int, np.ndarray]) -> np.ndarray:
        y = x.copy()
        for axis, chosen in flips.items():
            y[chosen] = np.flip(y[chosen], axis=axis)
        return y

    def transform_backward(self, cache, dy):
        return self._flip(dy, cache)


# -- affine transforms --------------------------------------------------------------------------------
class _Resampling:
    """Bilinear or nearest reads of a batch at per-image affine coordinates: ``y = sum_k w_k x[i_k]`` (+ the
    fill value's share for constant reads outside), kept so that the backward scatters ``dy`` back."""

    def __init__(
        self,
        shape: tuple[int, ...],
        transforms: np.ndarray,
        interpolation: str,
        fill_mode: str,
        fill_value: float,
        dtype: np.dtype,
    ):
        n, h, w, _ = shape
        self.shape = shape
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        a = transforms[:, :, None, None]
        src_x = a[:, 0] * cols + a[:, 1] * rows + a[:, 2]
        src_y = a[:, 3] * cols + a[:, 4] * rows + a[:, 5]
        if interpolation == "nearest":
            corners = [(np.round(src_y), np.round(src_x), np.ones_like(src_x))]
        else:
            y0, x0 = np.floor(src_y), np.floor(src_x)
            fy, fx = src_y - y0, src_x - x0
            corners = [
                (y0, x0, (1 - fy) * (1 - fx)),
                (y0, x0 + 1, (1 - fy) * fx),
                (y0 + 1, x0, fy * (1 - fx)),
                (y0 + 1, x0 + 1, fy * fx),
            ]
        batch = np.arange(n)[:, None, None]
        self.reads = []
        fill = np.zeros((n, h, w), np.float64)
        for cy, cx, weight in corners:
            iy, inside_y = _fill_index(cy.astype(np.int64), h, fill_mode)
            ix, inside_x = _fill_index(cx.astype(np.int64), w, fill_mode)
            inside = inside_y & inside_x
            fill += np.where(inside, 0.0, weight)
            self.reads.append((((batch * h + iy) * w + ix).ravel(), (weight * inside).astype(dtype).ravel()))
        self.fill = (fill * fill_value).astype(dtype)[..., None] if fill_value else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1])
        y = np.zeros_like(flat)
        for index, weight in self.reads:
            y += flat[index] * weight[:, None]
        y = y.reshape(x.shape)
        return y if self.fill is None else y + self.fill

    def backward(self, dy: np.ndarray) -> np.ndarray:
        flat = dy.reshape(-1, dy.shape[-1])
        dx = np.zeros_like(flat)
        for index, weight in self.reads:
            np.add.at(dx, index, flat * weight[:, None])
        return dx.reshape(self.shape)


def _fill_index(index: np.ndarray, size: int, fill_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """``(index inside 0..size-1, whether the read is of the image)``: outside reads mapped by ``fill_mode``."""
    if fill_mode == "reflect":
        period = np.mod(index, 2 * size)
        return np.where(period >= size, 2 * size - 1 - period, period), np.ones(index.shape, bool)
    if fill_mode == "wrap":
        return np.mod(index, size), np.ones(index.shape, bool)
    clipped = np.clip(index, 0, size - 1)
    if fill_mode == "nearest":
        return clipped, np.ones(index.shape, bool)
    return clipped, (index >= 0) & (index < size)


class _AffineAugmentation(Augmentation):
    """A geometric augmentation: per-image affine matrices (``matrices``) read through ``_Resampling``."""

    def matrices(self, n: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, 6)`` Keras transforms ``[a0, a1, a2, a3, a4, a5]`` from output to input coordinates."""
        raise NotImplementedError

    def transform(self, x, rng):
        n, height, width, _ = x.shape
        resampling = _Resampling(
            x.shape,
            self.matrices(n, height, width, rng),
            self.config["interpolation"],
            self.config["fill_mode"],
            self.config["fill_value"],
            x.dtype,
        )
        return resampling.forward(x), resampling

    def transform_backward(self, cache, dy):
        return cache.backward(dy)


class RandomRotation(_AffineAugmentation):
    type = "RandomRotation"
    description = (
        "During training, rotates each image about its centre by a random angle, a fraction of a full "
        "turn drawn from factor; the identity at inference."
    )
    schema = {
        "factor": _factor(
            "Fraction of 2 pi: a number f rotates by an angle drawn from [-f * 2pi, f * 2pi], a pair "
            "[lower, upper] from [lower * 2pi, upper * 2pi]; positive turns counter-clockwise."
        ),
        **_GEOMETRY,
    }
    required = ("factor",)
    examples = [
        ({"factor": 0.1}, (5, 4, 2)),
        ({"factor": [-0.2, 0.3], "fill_mode": "constant", "fill_value": 0.5, "interpolation": "nearest"}, (4, 4, 1)),
        ({"factor": 0.5, "fill_mode": "wrap"}, (3, 5, 1)),
    ]

    def matrices(self, n, height, width, rng):
        lower, upper = _bounds(self.config["factor"])
        angle = rng.uniform(lower, upper, n) * 2 * np.pi
        cos, sin = np.cos(angle), np.sin(angle)
        x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2
        y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2
        return np.stack([cos, -sin, x_offset, sin, cos, y_offset], axis=1)


class RandomZoom(_AffineAugmentation):
    type = "RandomZoom"
    description = (
        "During training, zooms each image in or out about its centre by a random amount drawn from "
        "height_factor (and width_factor); the identity at inference."
    )
    schema = {
        "height_factor": _factor(
            "Zoom of the height as a fraction: a number f draws from [-f, f], a pair "
            "[lower, upper] from it; positive zooms out (the image shrinks), negative zooms in."
        ),
        "width_factor": _nullable(
            _factor("Zoom of the width, as height_factor; null: the height's zoom, keeping the aspect ratio.")
        ),
        **_GEOMETRY,
    }
    required = ("height_factor",)
    examples = [
        ({"height_factor": 0.2}, (5, 4, 2)),
        ({"height_factor": [-0.3, -0.1], "width_factor": [0.1, 0.4], "fill_mode": "nearest"}, (4, 5, 1)),
        ({"height_factor": 0.3, "fill_mode": "constant", "interpolation": "nearest"}, (4, 4, 1)),
    ]

    def matrices(self, n, height, width, rng):
        lower, upper = _bounds(self.config["height_factor"])
        height_zoom = 1 + rng.uniform(lower, upper, n)
        width_factor = self.config["width_factor"]
        if width_factor is None:
            width_zoom = height_zoom
        else:
            lower, upper = _bounds(width_factor)
            width_zoom = 1 + rng.uniform(lower, upper, n)
        x_offset = (width - 1) / 2 * (1 - width_zoom)
        y_offset = (height - 1) / 2 * (1 - height_zoom)
        zeros = np.zeros(n)
        return np.stack([width_zoom, zeros, x_offset, zeros, height_zoom, y_offset], axis=1)


class RandomTranslation(_AffineAugmentation):
    type = "RandomTranslation"
    description = (
        "During training, shifts each image by a random fraction of its height and width; the identity at inference."
    )
    schema = {
        "height_factor": _factor(
            "Vertical shift as a fraction of the height: a number f draws from [-f, f], a "
            "pair [lower, upper] from it; positive shifts down."
        ),
        "width_factor": _factor(
            "Horizontal shift as a fraction of the width, as height_factor; positive shifts right."
        ),
        **_GEOMETRY,
    }
    required = ("height_factor", "width_factor")
    examples = [
        ({"height_factor": 0.2, "width_factor": 0.2}, (5, 4, 2)),
        (
            {"height_factor": [-0.3, 0.1], "width_factor": 0.25, "fill_mode": "constant", "interpolation": "nearest"},
            (4, 4, 1),
        ),
    ]

    def matrices(self, n, height, width, rng):
        dy = rng.uniform(*_bounds(self.config["height_factor"]), n) * height
        dx = rng.uniform(*_bounds(self.config["width_factor"]), n) * width
        ones, zeros = np.ones(n), np.zeros(n)
        return np.stack([ones, zeros, -dx, zeros, ones, -dy], axis=1)


# -- crop -------------------------------------------------------------------------------------------
def resize_matrix(size: int, target: int, dtype: np.dtype) -> np.ndarray:
    """``(target, size)`` bilinear resize weights with half-pixel centres, no antialiasing (TensorFlow's resize,
    which Keras calls, and ONNX Resize's linear ``half_pixel``); reads before the first or past the last pixel
    take that pixel."""
    out = np.arange(target)
    source = np.maximum((out + 0.5) * size / target - 0.5, 0)
    below = np.floor(source)
    lerp = source - below
    matrix = np.zeros((target, size), np.float64)
    np.add.at(matrix, (out, np.clip(below, 0, size - 1).astype(int)), 1 - lerp)
    np.add.at(matrix, (out, np.clip(below + 1, 0, size - 1).astype(int)), lerp)
    return matrix.astype(dtype)


class RandomCrop(Augmentation):
    type = "RandomCrop"
    description = (
        "During training, crops the batch to height x width at a random place (the same for the whole "
        "batch, as Keras); at inference, and in training for a smaller image, takes the largest centred "
        "window with the target's aspect ratio and resizes it to height x width (bilinear)."
    )
    schema = {
        "height": {"type": "integer", "minimum": 1, "description": "Height of the output."},
        "width": {"type": "integer", "minimum": 1, "description": "Width of the output."},
    }
    required = ("height", "width")
    examples = [
        ({"height": 3, "width": 2}, (5, 4, 2)),
        ({"height": 4, "width": 4}, (4, 6, 1)),
        ({"height": 6, "width": 3}, (4, 4, 1)),
    ]

    def output_shape(self, input_shape):
        _, _, channels = require_image_input(self.type, input_shape)
        return (self.config["height"], self.config["width"], channels)

    def window(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, rows, columns)``: the largest centred window with the output's aspect ratio (Keras)."""
        target_h, target_w = self.config["height"], self.config["width"]
        rows = max(min(height, int(width * target_h / target_w)), 1)
        columns = max(min(width, int(height * target_w / target_h)), 1)
        return (height - rows) // 2, (width - columns) // 2, rows, columns

    def infer(self, x):
        return self._window_resized(x)

    def _window_resized(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """The centred window resized to the output size, and the cache of its backward."""
        height, width = x.shape[1:3]
        top, left, rows, columns = self.window(height, width)
        a_h = resize_matrix(rows, self.config["height"], x.dtype)
        a_w = resize_matrix(columns, self.config["width"], x.dtype)
        window = x[:, top : top + rows, left : left + columns]
        y = np.einsum("ir,nrcd,jc->nijd", a_h, window, a_w, optimize=True)
        return y, ("resize", x.shape, (top, left), a_h, a_w)

    def transform(self, x, rng):
        height, width = x.shape[1:3]
        target_h, target_w = self.config["height"], self.config["width"]
        if height < target_h or width < target_w:
            return self._window_resized(x)
        top = int(rng.integers(0, height - target_h + 1))
        left = int(rng.integers(0, width - target_w + 1))
        y = np.ascontiguousarray(x[:, top : top + target_h, left : left + target_w])
        return y, ("crop", x.shape, (top, left), None, None)

    def transform_backward(self, cache, dy):
        kind, shape, (top, left), a_h, a_w = cache
        dx = np.zeros(shape, dy.dtype)
        if kind == "crop":
            dx[:, top : top + dy.shape[1], left : left + dy.shape[2]] = dy
        else:
            dx[:, top : top + a_h.shape[1], left : left + a_w.shape[1]] = np.einsum(
                "ir,nijd,jc->nrcd", a_h, dy, a_w, optimize=True
            )
        return dx

    def to_onnx(self, builder, params, input_name):
        """The inference path: a Slice of the centred window, then a Resize to the output size if it differs."""
        height, width, channels = builder.shape(input_name)
        top, left, rows, columns = self.window(height, width)
        target = (self.config["height"], self.config["width"])
        nchw = builder.layout(input_name) == NCHW
        axes = [2, 3] if nchw else [1, 2]
        resize = (rows, columns) != target
        window = input_name
        if (rows, columns) != (height, width):
            inputs = [
                input_name,
                builder.constant_int64([top, left], f"{self.name}_starts"),
                builder.constant_int64([top + rows, left + columns], f"{self.name}_ends"),
                builder.constant_int64(axes, f"{self.name}_axes"),
            ]
            window = builder.node("Slice", inputs, hint=f"{self.name}_window" if resize else self.name)
        if not resize:
            return window
        shape = builder.node("Shape", [window], hint=f"{self.name}_shape")
        first = [
            builder.constant_int64([0], f"{self.name}_batch_start"),
            builder.constant_int64([1], f"{self.name}_batch_end"),
        ]
        batch = builder.node("Slice", [shape, *first], hint=f"{self.name}_batch")
        rest = [channels, *target] if nchw else [*target, channels]
        sizes = builder.node(
            "Concat", [batch, builder.constant_int64(rest, f"{self.name}_size")], hint=f"{self.name}_sizes", axis=0
        )
        return builder.node("Resize", [window, "", "", sizes], hint=self.name, **_RESIZE_ATTRIBUTES["bilinear"])


# -- colour ---------------------------------------------------------------------------------------
class _ClippedAugmentation(Augmentation):
    """An augmentation whose output is clipped to ``value_range``; the clip's mask gates the gradient."""

    def clip(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.config["value_range"]
        inside = (y >= low) & (y <= high)
        return np.clip(y, low, high), inside


class RandomContrast(_ClippedAugmentation):
    type = "RandomContrast"
    description = (
        "During training, scales each image's distance from its per-channel mean by a random factor "
        "drawn from [1 - lower, 1 + upper], clipped to value_range; the identity at inference."
    )
    schema = {
        "factor": _factor(
            "A number f draws the contrast factor from [1 - f, 1 + f]; a pair [lower, upper] from "
            "[1 - lower, 1 + upper].",
            minimum=0.0,
        ),
        **_VALUE_RANGE,
    }
    required = ("factor",)
    examples = [
        ({"factor": 0.5, "value_range": [-10, 10]}, (4, 3, 2)),
        ({"factor": [0.2, 0.8], "value_range": [-1, 1]}, (3, 3, 1)),
    ]

    def transform(self, x, rng):
        factor = self.config["factor"]
        lower, upper = (factor, factor) if isinstance(factor, (int, float)) else factor
        scale = rng.uniform(1 - lower, 1 + upper, len(x)).astype(x.dtype)[:, None, None, None]
        mean = x.mean(axis=(1, 2), keepdims=True)
        y, inside = self.clip((x - mean) * scale + mean)
        return y, (scale, inside)

    def transform_backward(self, cache, dy):
        scale, inside = cache
        dz = dy * inside
        return dz * scale + dz.mean(axis=(1, 2), keepdims=True) * (1 - scale)


class RandomBrightness(_ClippedAugmentation):
    type = "RandomBrightness"
    description = (
        "During training, adds to each image a random fraction of value_range's width drawn from "
        "factor, clipped to value_range; the identity at inference."
    )
    schema = {
        "factor": _factor(
            "A number f draws the change from [-f, f], a pair [lower, upper] from it, as a fraction of "
            "value_range's width; positive brightens."
        ),
        **_VALUE_RANGE,
    }
    required = ("factor",)
    examples = [
        ({"factor": 0.2, "value_range": [-10, 10]}, (4, 3, 2)),
        ({"factor": [-0.5, 0.1], "value_range": [-1, 1]}, (3, 3, 1)),
    ]

    def transform(self, x, rng):
        low, high = self.config["value_range"]
        delta = rng.uniform(*_bounds(self.config["factor"]), len(x)) * (high - low)
        y, inside = self.clip(x + delta.astype(x.dtype)[:, None, None, None])
        return y, inside

    def transform_backward(self, cache, dy):
        return dy * cache
