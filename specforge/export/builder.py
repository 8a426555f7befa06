"""A small helper through which layers emit ONNX nodes.

It makes unique names, holds initializers, and tracks for every tensor its
logical shape (NHWC, without the batch axis, as in the spec) and its physical
layout.  The model's input is NHWC; ONNX's Conv and pooling want NCHW, so a
layer asks ``to_layout(name, "NCHW")`` and the builder inserts a Transpose only
when the tensor is not already in that layout (and reuses it when asked twice).
Elementwise nodes keep their input's layout, so a run of Conv -> Relu -> Conv
has no Transposes between the convolutions. Sequences (steps, channels) travel between 1-D layers
as one-pixel-high NCHW images, so a run of Conv1D -> BatchNormalization -> MaxPooling1D has none either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from onnx import helper, numpy_helper

from specforge.base.layout import NCHW, NHWC

_PERM = {(NHWC, NCHW): [0, 3, 1, 2], (NCHW, NHWC): [0, 2, 3, 1]}


class OnnxBuilder:
    def __init__(self, opset: int = 13):
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.layouts: dict[str, str] = {}
        self._used: Counter = Counter()
        self._transposed: dict[tuple[str, str], str] = {}
        self._claims: dict[str, tuple[str, int]] = {}
        self.prefix = ""

    def unique(self, hint: str) -> str:
        base = f"{self.prefix}{hint}"
        self._used[base] += 1
        count = self._used[base]
        return base if count == 1 else f"{base}_{count - 1}"

    def initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.unique(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def constant_int64(self, values: Sequence[int], hint: str) -> str:
        return self.initializer(np.asarray(values, dtype=np.int64), hint)

    def claim(self, hint: str, name: str, rank: int) -> None:
        """Give the next node hinted ``hint`` (a layer's output node is hinted with the layer's name) the
        exact output ``name``, if its output of ``rank`` axes comes out in the spec's layout (NHWC)."""
        self._claims[hint] = (name, rank)

    def release(self, hint: str) -> bool:
        """Drop the claim on ``hint``; whether it was still unused."""
        return self._claims.pop(hint, None) is not None

    @overload
    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str | None = None,
        *,
        layout: str | None = None,
        outputs: Literal[1] = 1,
        name: str | None = None,
        **attrs: Any,
    ) -> str: ...

    @overload
    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str | None = None,
        *,
        layout: str | None = None,
        outputs: int,
        name: str | None = None,
        **attrs: Any,
    ) -> list[str]: ...

    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        hint: str | None = None,
        *,
        layout: str | None = None,
        outputs: int = 1,
        name: str | None = None,
        **attrs: Any,
    ) -> str | list[str]:
        """Add a node; its output keeps the first input's layout unless ``layout`` is given. ``name`` (or a
        claim on ``hint``) names its single output exactly; otherwise names are made unique from ``hint``.
        One output comes back as its name, several as the list of their names."""
        out_layout = layout or (self.layouts.get(inputs[0], NHWC) if inputs else NHWC)
        if name is None and hint is not None:
            claimed = self._claims.get(hint)
            if claimed is not None and (out_layout == NHWC or claimed[1] not in (2, 3)):
                name = self._claims.pop(hint)[0]
        names = [name] if name is not None else [self.unique(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attrs))
        for name in names:
            self.layouts[name] = out_layout
        return names[0] if outputs == 1 else names

    def shape(self, name: str) -> tuple[int, ...]:
        """Logical shape (spec order, no batch axis) of a tensor the exporter has registered."""
        return self.shapes[name]

    def layout(self, name: str) -> str:
        return self.layouts.get(name, NHWC)

    def to_layout(self, name: str, layout: str, output: str | None = None) -> str:
        """``name`` in ``layout`` (NHWC or NCHW), into a tensor named ``output`` when given. Only images
        (rank 3 without batch) and sequences (rank 2) have two layouts; a sequence's NCHW form is the
        one-pixel-high image ``(N, C, 1, steps)`` that ONNX's convolutions and poolings take."""
        current, rank = self.layout(name), len(self.shapes.get(name, ()))
        if current == layout or rank not in (2, 3):
            return name
        key = (name, layout)
        if key not in self._transposed:
            hint = f"{name}_to_{layout.lower()}"
            if rank == 3 and self.shapes[name][2] == 1:  # one channel: the same bytes in either layout
                height, width, _ = self.shapes[name]
                target = [0, 1, height, width] if layout == NCHW else [0, height, width, 1]
                out = self.node(
                    "Reshape", [name, self.constant_int64(target, f"{hint}_shape")], hint, layout=layout, name=output
                )
            elif rank == 3:
                out = self.node("Transpose", [name], hint, layout=layout, name=output, perm=_PERM[(current, layout)])
            elif layout == NCHW:
                image = self.node(
                    "Unsqueeze", [name, self.constant_int64([1], f"{hint}_axis")], f"{hint}_image", layout=NHWC
                )
                out = self.node("Transpose", [image], hint, layout=layout, name=output, perm=_PERM[(current, layout)])
            else:
                image = self.node("Transpose", [name], f"{hint}_image", layout=layout, perm=_PERM[(current, layout)])
                out = self.node(
                    "Squeeze", [image, self.constant_int64([1], f"{hint}_axis")], hint, layout=layout, name=output
                )
            self.shapes[out] = self.shapes[name]
            self._transposed[key] = out
        return self._transposed[key]

    def value_info(self, name: str, shape: Sequence[int | str], doc: str = "", dtype: str = "float32") -> Any:
        """A graph input's or output's type: ``dtype`` (a numpy dtype name) and ``shape``."""
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape), doc_string=doc
        )
