"""Conv2DTranspose: the transpose (adjoint) of a strided convolution, as Keras 3 on TensorFlow.

A Conv2D with kernel ``K`` (height, width, filters, channels) maps a ``filters``-channel image of
``P = (n - 1) * s + e`` pixels per axis (``e`` the dilated kernel extent) onto an ``n``-pixel
``channels`` image; its input gradient maps ``n`` pixels back onto ``P``. The forward of this layer is
that input gradient, applied to the input (``ops.conv_transpose``), and the output is the window
``[before, before + out)`` of the ``P`` pixels, zero where it reaches past them. Keras' output size per axis:

- ``output_padding`` null: valid ``n * s + max(e - s, 0)``, same ``n * s``;
- else: ``(n - 1) * s + e - 2 * pad + output_padding`` with ``pad`` 0 (valid) or ``e // 2`` (same);

and TensorFlow's offset: ``before = max(P - out, 0) // 2`` for same, 0 for valid.

The backward runs the convolution itself (``ops.conv_transpose_gradients``): the input gradient is the
Conv2D forward of the output gradient (placed back on the ``P`` pixels), the kernel gradient that Conv2D's
kernel gradient with the layer's input as its output gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specforge import ops
from specforge.base.errors import ShapeError, SpecError
from specforge.base.layout import NCHW
from specforge.layers.base import (
    PADDING_SCHEMA,
    Layer,
    Params,
    Shape,
    as_pair,
    initializer_schema,
    int_or_pair,
    kernel_and_bias,
)
from specforge.layers.conv import Conv2D, require_strides_or_dilation
from specforge.layers.windows import require_image
from specforge.options.activations import ActivationFunction
from specforge.options.initializers import compute_fans, initialize

_OUTPUT_PADDING = int_or_pair(
    "Extra rows and columns at the bottom and right of the output, each smaller than "
    "the stride; null (the default): the size padding gives.",
    minimum=0,
)


def _same_padding_refused(axis: str, n: int, extent: int, stride: int, out_pad: int, length: int) -> str:
    """TensorFlow runs padding same as the gradient of a convolution from ``length`` pixels, which has
    ceil(length / stride) of them: that must be the input's ``n`` (it is not for an even kernel extent
    and output_padding 0)."""
    fixes = ([f"output_padding {1 if stride == 2 else f'1 to {stride - 1}'} along {axis}"] if stride > 1 else []) + [
        "an odd kernel_size",
        "padding: valid",
        "output_padding: null",
    ]
    return (
        f"Conv2DTranspose output {axis} (({n} - 1)*{stride} + {extent} - 2*{extent // 2} + {out_pad}) = {length} "
        f"with padding same, but TensorFlow requires ceil({length} / {stride}) = {-(-length // stride)} to equal "
        f"the input {axis} {n}; use {', '.join(fixes[:-1])} or {fixes[-1]}"
    )


class Conv2DTranspose(Layer):
    type = "Conv2DTranspose"
    description = (
        "Transposed 2-D convolution (sometimes called deconvolution): spreads each input pixel over a "
        "kernel-sized patch of a larger output, e.g. doubling height and width with strides 2."
    )
    schema = {
        **{key: Conv2D.schema[key] for key in ("filters", "kernel_size")},
        "strides": int_or_pair("Step of the window along height and width of the output.", default=1),
        "padding": PADDING_SCHEMA,
        "output_padding": {**_OUTPUT_PADDING, "oneOf": [*_OUTPUT_PADDING["oneOf"], {"type": "null"}], "default": None},
        "dilation_rate": int_or_pair("Spacing between kernel taps; cannot be combined with strides > 1.", default=1),
        **{key: Conv2D.schema[key] for key in ("activation", "use_bias")},
        "kernel_initializer": initializer_schema("glorot_uniform", "kernel (height, width, filters, in)"),
        "bias_initializer": Conv2D.schema["bias_initializer"],
    }
    required = ("filters", "kernel_size")
    fuses_activation = True
    examples = [
        ({"filters": 3, "kernel_size": [3, 2]}, (4, 5, 2)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (3, 4, 3)),
        ({"filters": 2, "kernel_size": [2, 3], "strides": [3, 2]}, (3, 3, 2)),
        ({"filters": 2, "kernel_size": [3, 4], "strides": 2, "padding": "same", "output_padding": [1, 1]}, (3, 2, 2)),
        ({"filters": 2, "kernel_size": 3, "strides": [2, 3], "output_padding": [1, 2], "use_bias": False}, (2, 3, 1)),
        ({"filters": 3, "kernel_size": [3, 2], "dilation_rate": [2, 1], "padding": "same"}, (4, 4, 2)),
        ({"filters": 2, "kernel_size": 2, "strides": [3, 2], "padding": "same"}, (3, 2, 33)),
    ]

    def __init__(self, config: dict[str, Any], name: str | None = None):
        super().__init__(config, name)
        require_strides_or_dilation(self)
        if self.config["output_padding"] is not None:
            strides, padding = as_pair(self.config["strides"]), as_pair(self.config["output_padding"])
            if any(extra >= stride for extra, stride in zip(padding, strides)):
                raise SpecError(
                    f"Conv2DTranspose output_padding must be smaller than strides along each axis "
                    f"(received strides={self.config['strides']}, output_padding="
                    f"{self.config['output_padding']}); use output_padding < strides or null"
                )

    # -- shapes and sizes ---------------------------------------------------------------------------
    def frame(self, input_shape: Shape) -> ops.Frame:
        height, width, _ = require_image(self.type, input_shape)
        kernel, strides = as_pair(self.config["kernel_size"]), as_pair(self.config["strides"])
        dilation = as_pair(self.config["dilation_rate"])
        window = ops.Window(kernel, strides, dilation, ((0, 0), (0, 0)))
        extra = self.config["output_padding"]
        same = self.config["padding"] == "same"
        full: list[int] = []
        before: list[int] = []
        size: list[int] = []
        for axis, n, e, s, out_pad in zip(
            ("height", "width"),
            (height, width),
            window.effective,
            strides,
            (None, None) if extra is None else as_pair(extra),
        ):
            if out_pad is None:
                length = n * s if same else n * s + max(e - s, 0)
            else:
                length = (n - 1) * s + e - 2 * (e // 2 if same else 0) + out_pad
                if same and -(-length // s) != n:
                    raise ShapeError(_same_padding_refused(axis, n, e, s, out_pad, length))
            full.append((n - 1) * s + e)
            before.append(max(full[-1] - length, 0) // 2 if same else 0)
            size.append(length)
        return ops.Frame(window, (full[0], full[1]), (before[0], before[1]), (size[0], size[1]))

    def output_shape(self, input_shape: Shape) -> Shape:
        return (*self.frame(input_shape).size, self.config["filters"])

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        channels = require_image(self.type, input_shape)[2]
        shapes: dict[str, Shape] = {"kernel": (*as_pair(self.config["kernel_size"]), self.config["filters"], channels)}
        if self.config["use_bias"]:
            shapes["bias"] = (self.config["filters"],)
        return shapes

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        shapes = self.param_shapes(input_shape)
        fans = compute_fans(shapes["kernel"])
        return {
            name: initialize(self.config[f"{name}_initializer"], shape, *fans, rng, dtype=np.float32)
            for name, shape in shapes.items()
        }

    def flops(self, input_shape: Shape) -> int:
        height, width, _ = require_image(self.type, input_shape)
        return 2 * height * width * int(np.prod(self.param_shapes(input_shape)["kernel"]))

    # -- math ------------------------------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        return ops.conv_transpose(x, params["kernel"], self.frame(x.shape[1:]), params.get("bias"), activation)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        dx, dkernel, dbias = ops.conv_transpose_gradients(cache, dy, need_dx)
        return dx, kernel_and_bias(dkernel, dbias)

    # -- export ----------------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        frame = self.frame(builder.shape(input_name))
        inputs = [
            builder.to_layout(input_name, NCHW),
            builder.initializer(params["kernel"].transpose(3, 2, 0, 1).astype(np.float32), f"{self.name}_kernel"),
        ]
        if "bias" in params:
            inputs.append(builder.initializer(params["bias"].astype(np.float32), f"{self.name}_bias"))
        window = frame.window
        return builder.node(
            "ConvTranspose",
            inputs,
            hint=self.name,
            layout=NCHW,
            kernel_shape=list(window.kernel),
            strides=list(window.strides),
            dilations=list(window.dilation),
            pads=frame.onnx_pads,
            output_padding=frame.onnx_output_padding,
        )

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import TransposedConvolution

        return TransposedConvolution(node, params)
