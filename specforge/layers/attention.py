"""MultiHeadAttention (Keras 3): scaled dot-product attention of a query sequence over a value sequence, in
several heads.

With the query ``(T, Fq)``, the value ``(S, Fv)`` and the key ``(S, Fk)`` (the value when not given), each
head ``h`` projects them (Keras' weight layouts: kernels ``(features, num_heads, key_dim)``, biases
``(num_heads, key_dim)``; the value's with ``value_dim``)::

    q = query @ Wq[:, h] + bq[h]     k = key @ Wk[:, h] + bk[h]     v = value @ Wv[:, h] + bv[h]
    a = softmax(q @ k.T / sqrt(key_dim))                     (T, S), over the value's steps
    y = sum over h of (dropout(a) @ v) @ Wo[h] + bo          Wo (num_heads, value_dim, output_shape)

The key's bias shifts every score of a query step by the same amount, which the softmax ignores: it is kept
for Keras' weight layout, and its gradient is exactly zero (computed as such, not left to rounding).

A causal mask (``use_causal_mask``) lets query step t see value steps up to t only: the scores of the others
get Keras' large negative number (-1e9) before the softmax, whose weights there are then 0. The masks of the
padding (``Layer.masking``) join it as Keras' ``_compute_attention_mask`` joins them: a query step that does
not count sees no value step (its weights come out uniform, as Keras'), and no query step sees a value or key
step that does not count; the output carries the query's mask. Dropout zeroes
attention weights in training (inverted dropout, drawn from the run's generator or the layer's ``seed``).

A kind of one to three inputs (``Layer.merges`` with ``arity`` (1, 3)): ``inputs`` names the query, the value
and the key in that order, as Keras' ``call(query, value, key)``; one input (or none: the layer before) is
self-attention, the query, value and key being that one sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from specforge.base.layout import NHWC
from specforge.layers.base import Layer, Params, Shape, initializer_schema, shape_error
from specforge.options.initializers import compute_fans, initialize

#: What the inputs are to the attention, in the order ``inputs`` names them.
ROLES = ("query", "value", "key")
#: The projections, in Keras' order of weights (query, key, value, output).
PROJECTIONS = ("query", "key", "value", "output")
#: Keras' large negative number for float32, added to the scores a mask hides.
MASKED = -1e9

_POSITIVE = {"type": "integer", "minimum": 1}


def role_positions(count: int) -> tuple[int, int, int]:
    """The input positions of the query, the value and the key when ``count`` inputs are given."""
    value = 1 if count > 1 else 0
    return 0, value, 2 if count > 2 else value


def _sources(names: Sequence[str] | None, count: int) -> dict[str, str]:
    """`` from 'layer'`` for each role, the layer its input comes from (nothing when the names are unknown)."""
    if not names:
        return dict.fromkeys(ROLES, "")
    return {role: f" from {names[position]!r}" for role, position in zip(ROLES, role_positions(count))}


def causal_bias(query_steps: int, value_steps: int) -> np.ndarray:
    """``(T, S)``: 0 where query step t may see value step s (s <= t), ``MASKED`` elsewhere (Keras'
    ``_compute_causal_mask``: the lower triangle of a T x S matrix)."""
    allowed = np.arange(query_steps)[:, None] >= np.arange(value_steps)[None, :]
    return np.where(allowed, 0.0, MASKED)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, a new array."""
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


class MultiHeadAttention(Layer):
    type = "MultiHeadAttention"
    description = (
        "Multi-head scaled dot-product attention (Keras 3): each query step takes a softmax-weighted mix of the "
        "value's steps, scored by the query against the key, in num_heads heads whose results are projected "
        "back together. Inputs: one sequence (self-attention), or [query, value] or [query, value, key]."
    )
    schema = {
        "num_heads": {**_POSITIVE, "description": "Number of attention heads."},
        "key_dim": {**_POSITIVE, "description": "Size of each head's query and key projections."},
        "value_dim": {
            "oneOf": [_POSITIVE, {"type": "null"}],
            "default": None,
            "description": "Size of each head's value projection; null (the default) means key_dim.",
        },
        "dropout": {
            "type": "number",
            "minimum": 0,
            "exclusiveMaximum": 1,
            "default": 0.0,
            "description": "Fraction of the attention weights dropped in training, in [0, 1).",
        },
        "seed": {
            "type": ["integer", "null"],
            "minimum": 0,
            "default": None,
            "description": "Seed of this layer's dropout masks; null: drawn from the run's random generator.",
        },
        "use_bias": {
            "type": "boolean",
            "default": True,
            "description": "Whether the query, key, value and output projections add a learned bias.",
        },
        "output_shape": {
            "oneOf": [_POSITIVE, {"type": "null"}],
            "default": None,
            "description": "Features of each output step; null (the default) means the query's last axis.",
        },
        "kernel_initializer": initializer_schema("glorot_uniform", "projection kernels"),
        "bias_initializer": initializer_schema("zeros", "projection biases"),
        "use_causal_mask": {
            "type": "boolean",
            "default": False,
            "description": "Whether query step t may see only the value's steps up to t (a decoder's self-attention).",
        },
    }
    required = ("num_heads", "key_dim")
    merges = True
    arity = (1, 3)
    examples = [
        ({"num_heads": 2, "key_dim": 3}, [(4, 5)]),
        (
            {
                "inputs": ["query", "value"],
                "num_heads": 2,
                "key_dim": 2,
                "value_dim": 3,
                "output_shape": 4,
                "use_causal_mask": True,
            },
            [(3, 5), (4, 5)],
        ),
        (
            {"inputs": ["query", "value", "key"], "num_heads": 1, "key_dim": 2, "use_bias": False},
            [(3, 4), (5, 4), (5, 6)],
        ),
        ({"num_heads": 2, "key_dim": 2, "dropout": 0.25, "use_causal_mask": True}, [(4, 3)]),
        ({"num_heads": 1, "key_dim": 3, "dropout": 0.5, "seed": 7}, [(3, 2)]),
    ]

    def __init__(self, config: dict[str, Any], name: str | None = None):
        super().__init__(config, name)
        seed = self.config["seed"]
        self._rng = None if seed is None else np.random.default_rng(seed)

    @classmethod
    def inputs_schema(cls) -> dict:
        return {
            **super().inputs_schema(),
            "description": "The query, value and key layers by name (1 to 3), as Keras' call(query, value, key): one "
            "name (or none: the layer before) is self-attention; [query, value] takes the value as the key. "
            "`input` is the model's input.",
        }

    # -- sizes ---------------------------------------------------------------------------------------------
    #: the input positions of the query, the value and the key for a count of inputs
    positions = staticmethod(role_positions)

    masking = "take"
    #: what a mask adds to the scores it hides (read by the PyTorch module, which does not import this one)
    masked_score = MASKED

    def passes_mask(self) -> bool:
        return True

    def mask_inputs(self, inputs):
        return inputs[:1]

    def mask_bias(
        self, query_steps: int, value_steps: int, masks: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray | None:
        """What the masks add to the scores: the causal bias ``(T, S)``, None without ``use_causal_mask``; with the
        masks of the inputs' steps (one per input, None for one without), ``(N, 1, T, S)``."""
        if masks is None:
            return causal_bias(query_steps, value_steps) if self.config["use_causal_mask"] else None
        query, value, key = (masks[position] for position in role_positions(len(masks)))
        allowed = np.ones((1, query_steps, value_steps), bool)
        if query is not None:
            allowed = allowed & query[:, :, None]
        for mask in (value, key):
            if mask is not None:
                allowed = allowed & mask[:, None, :]
        if self.config["use_causal_mask"]:
            allowed = allowed & (causal_bias(query_steps, value_steps) == 0)
        return np.where(allowed, 0.0, MASKED)[:, None]

    @property
    def heads(self) -> int:
        return int(self.config["num_heads"])

    @property
    def key_dim(self) -> int:
        return int(self.config["key_dim"])

    @property
    def value_dim(self) -> int:
        value_dim = self.config["value_dim"]
        return self.key_dim if value_dim is None else int(value_dim)

    def roles(self, input_shapes: Sequence[Shape], names: Sequence[str] | None = None) -> dict[str, Shape]:
        """The query, value and key shapes, each checked to be a sequence; ShapeError naming the input."""
        sources = _sources(names, len(input_shapes))
        shapes: dict[str, Shape] = {}
        for role, position in zip(ROLES, role_positions(len(input_shapes))):
            shape = tuple(int(d) for d in input_shapes[position])
            if len(shape) != 2:
                target = [shape[0], math.prod(shape[1:])] if len(shape) > 2 else [math.prod(shape), 1]
                raise shape_error(
                    f"MultiHeadAttention expects sequences (steps, features), got the {role} {shape}"
                    f"{sources[role]}; add a Reshape layer with target_shape {target} before it"
                )
            shapes[role] = shape
        return shapes

    # Several input shapes where Layer takes one (the contract Layer.merges documents), and their names.
    def output_shape(  # type: ignore[override]
        self, input_shapes: Sequence[Shape], names: Sequence[str] | None = None
    ) -> Shape:
        shapes, sources = self.roles(input_shapes, names), _sources(names, len(input_shapes))
        query, value, key = (shapes[role] for role in ROLES)
        if query[1] != value[1]:
            raise shape_error(
                f"MultiHeadAttention's query {query}{sources['query']} and value {value}{sources['value']} "
                f"must have the same last axis (Keras' rule); give one a Dense with units {query[1]} first"
            )
        if key[0] != value[0]:
            raise shape_error(
                f"MultiHeadAttention's value {value}{sources['value']} and key {key}{sources['key']} must have "
                "the same steps (each value step is weighted by its key's score)"
            )
        output = self.config["output_shape"]
        return (query[0], query[1] if output is None else int(output))

    def param_shapes(self, input_shapes: Sequence[Shape]) -> dict[str, Shape]:  # type: ignore[override]
        """Keras' layouts, in Keras' order: the query, key and value kernels ``(features, heads, dim)`` and
        biases ``(heads, dim)``, the output kernel ``(heads, value_dim, output_shape)`` and bias."""
        shapes, out = self.roles(input_shapes), self.output_shape(input_shapes)[1]
        dims = {"query": self.key_dim, "key": self.key_dim, "value": self.value_dim}
        params: dict[str, Shape] = {}
        for projection in PROJECTIONS:
            if projection == "output":
                params["output_kernel"] = (self.heads, self.value_dim, out)
                bias: Shape = (out,)
            else:
                params[f"{projection}_kernel"] = (shapes[projection][1], self.heads, dims[projection])
                bias = (self.heads, dims[projection])
            if self.config["use_bias"]:
                params[f"{projection}_bias"] = bias
        return params

    def init_params(self, input_shapes: Sequence[Shape], rng: np.random.Generator) -> Params:  # type: ignore[override]
        return {
            name: initialize(self.config[f"{name.rsplit('_', 1)[1]}_initializer"], shape, *compute_fans(shape), rng)
            for name, shape in self.param_shapes(input_shapes).items()
        }

    def flops(self, input_shapes: Sequence[Shape]) -> int:  # type: ignore[override]
        shapes, out = self.roles(input_shapes), self.output_shape(input_shapes)[1]
        (steps, features), value_steps = shapes["query"], shapes["value"][0]
        h, d, dv = self.heads, self.key_dim, self.value_dim
        projections = steps * features * h * d + value_steps * h * (shapes["key"][1] * d + shapes["value"][1] * dv)
        attention = h * steps * value_steps * (d + dv)
        return 2 * (projections + attention + steps * h * dv * out)

    # -- math -------------------------------------------------------------------------------------------------
    @staticmethod
    def _project(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """``(N, heads, steps, dim)``: ``x`` (N, steps, features) through a ``(features, heads, dim)`` kernel."""
        features, heads, dim = kernel.shape
        y = x.reshape(-1, features) @ kernel.reshape(features, heads * dim)
        if bias is not None:
            y += bias.reshape(-1)
        return y.reshape(len(x), -1, heads, dim).transpose(0, 2, 1, 3)

    def forward(self, params, x, training=False, rng=None, activation=None, *, mask=None):
        xs = list(x)
        query, value, key = (xs[position] for position in role_positions(len(xs)))
        q, k, v = (
            self._project(role_x, params[f"{role}_kernel"], params.get(f"{role}_bias"))
            for role, role_x in (("query", query), ("key", key), ("value", value))
        )
        scale = 1 / math.sqrt(self.key_dim)
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.asarray(scale, q.dtype)
        bias = self.mask_bias(q.shape[2], k.shape[2], mask)
        if bias is not None:
            scores += bias.astype(scores.dtype)
        attention = softmax(scores)
        mask = None
        rate = self.config["dropout"]
        if training and rate > 0:
            generator = self._rng if self._rng is not None else rng
            if generator is None:
                raise ValueError("MultiHeadAttention's dropout in training needs a random generator: pass rng or seed")
            mask = (generator.random(attention.shape, dtype=np.float32) >= rate).astype(attention.dtype)
            mask *= 1 / (1 - rate)
        kept = attention if mask is None else attention * mask
        n, heads, steps, value_dim = len(query), self.heads, q.shape[2], self.value_dim
        merged = (kept @ v).transpose(0, 2, 1, 3).reshape(n * steps, heads * value_dim)
        kernel = params["output_kernel"]
        y = merged @ kernel.reshape(heads * value_dim, -1)
        if "output_bias" in params:
            y += params["output_bias"]
        cache = (xs, q, k, v, attention, mask, kept, merged, scale)
        return y.reshape(n, steps, -1), cache

    def backward(self, params, cache, dy, need_dx=True):
        xs, q, k, v, attention, mask, kept, merged, scale = cache
        n, heads, steps, value_dim = len(dy), self.heads, q.shape[2], self.value_dim
        dy2 = dy.reshape(n * steps, -1)
        grads: Params = {"output_kernel": (merged.T @ dy2).reshape(params["output_kernel"].shape)}
        if "output_bias" in params:
            grads["output_bias"] = dy2.sum(axis=0)
        dmerged = dy2 @ params["output_kernel"].reshape(heads * value_dim, -1).T
        dcontext = dmerged.reshape(n, steps, heads, value_dim).transpose(0, 2, 1, 3)
        dkept = dcontext @ v.transpose(0, 1, 3, 2)
        dv = kept.transpose(0, 1, 3, 2) @ dcontext
        dattention = dkept if mask is None else dkept * mask
        dscores = attention * (dattention - (dattention * attention).sum(axis=-1, keepdims=True))
        dscores *= np.asarray(scale, dscores.dtype)
        dq = dscores @ k
        dk = dscores.transpose(0, 1, 3, 2) @ q
        positions = dict(zip(ROLES, role_positions(len(xs))))
        dxs: list[np.ndarray | None] = [None] * len(xs)
        for role, dprojected in (("query", dq), ("key", dk), ("value", dv)):
            x = xs[positions[role]]
            features = x.shape[-1]
            d2 = dprojected.transpose(0, 2, 1, 3).reshape(-1, dprojected.shape[1] * dprojected.shape[3])
            kernel = params[f"{role}_kernel"]
            grads[f"{role}_kernel"] = (x.reshape(-1, features).T @ d2).reshape(kernel.shape)
            if f"{role}_bias" in params:
                bias = params[f"{role}_bias"]
                grads[f"{role}_bias"] = np.zeros_like(bias) if role == "key" else d2.sum(axis=0).reshape(bias.shape)
            if need_dx:
                dx = (d2 @ kernel.reshape(features, -1).T).reshape(x.shape)
                position = positions[role]
                previous = dxs[position]
                dxs[position] = dx if previous is None else previous + dx
        grads = {name: grads[name] for name in params}  # Keras' order, as the parameters
        return (dxs if need_dx else None), grads

    # -- export --------------------------------------------------------------------------------------------------
    def to_onnx(  # type: ignore[override]
        self, builder, params: Params, input_names: list[str], *, mask: list[str | None] | None = None
    ) -> str:
        """MatMuls, Reshapes and Transposes on the sequences in their NHWC form ``(N, steps, features)``, and a
        Softmax over the last axis (the same in every opset); the masks of the inputs' steps (float ``(N,
        steps)``, 1 where a step counts) make the scores' bias as ``mask_bias`` does."""
        names = [builder.to_layout(name, NHWC) for name in input_names]
        query, value, key = (names[position] for position in role_positions(len(names)))
        q = self._onnx_project(builder, params, "query", query, [0, 2, 1, 3])
        k = self._onnx_project(builder, params, "key", key, [0, 2, 3, 1])
        v = self._onnx_project(builder, params, "value", value, [0, 2, 1, 3])
        scores = builder.node("MatMul", [q, k], f"{self.name}_scores")
        scale = builder.initializer(np.asarray(1 / math.sqrt(self.key_dim), np.float32), f"{self.name}_scale")
        scores = builder.node("Mul", [scores, scale], f"{self.name}_scaled")
        bias = self.mask_bias(builder.shape(query)[0], builder.shape(value)[0])
        if mask is not None:
            scores = builder.node("Add", [scores, self._onnx_bias(builder, mask, bias)], f"{self.name}_masked")
        elif bias is not None:
            masked = builder.initializer(bias.astype(np.float32), f"{self.name}_causal")
            scores = builder.node("Add", [scores, masked], f"{self.name}_masked")
        attention = builder.node("Softmax", [scores], f"{self.name}_attention", axis=-1)
        context = builder.node("MatMul", [attention, v], f"{self.name}_context")
        context = builder.node("Transpose", [context], f"{self.name}_steps_first", perm=[0, 2, 1, 3])
        width = builder.constant_int64([0, 0, self.heads * self.value_dim], f"{self.name}_merged_shape")
        merged = builder.node("Reshape", [context, width], f"{self.name}_merged")
        return self._onnx_dense(builder, params, "output", merged, self.name)

    def _onnx_bias(self, builder, masks: list[str | None], causal: np.ndarray | None) -> str:
        """The scores' bias ``(N, 1, T, S)`` of the masks of the inputs' steps and the causal bias: ``MASKED``
        where a pair is not allowed, as ``mask_bias``."""
        query, value, key = (masks[position] for position in role_positions(len(masks)))
        factors = []
        if query is not None:
            factors.append(
                builder.node(
                    "Unsqueeze",
                    [query, builder.constant_int64([2], f"{self.name}_query_axis")],
                    f"{self.name}_query_allowed",
                )
            )
        for role, mask in (("value", value), ("key", key)):
            if mask is not None:
                axis = builder.constant_int64([1], f"{self.name}_{role}_axis")
                factors.append(builder.node("Unsqueeze", [mask, axis], f"{self.name}_{role}_allowed"))
        if causal is not None:
            factors.append(builder.initializer((causal == 0).astype(np.float32), f"{self.name}_causal_allowed"))
        allowed = factors[0]
        for factor in factors[1:]:
            allowed = builder.node("Mul", [allowed, factor], f"{self.name}_allowed")
        one = builder.initializer(np.ones((), np.float32), f"{self.name}_one")
        hidden = builder.node("Sub", [one, allowed], f"{self.name}_hidden")
        large = builder.initializer(np.asarray(MASKED, np.float32), f"{self.name}_large_negative")
        bias = builder.node("Mul", [hidden, large], f"{self.name}_bias")
        heads_axis = builder.constant_int64([1], f"{self.name}_heads_axis")
        return builder.node("Unsqueeze", [bias, heads_axis], f"{self.name}_mask_bias")

    def _onnx_dense(self, builder, params: Params, projection: str, x: str, hint: str) -> str:
        kernel = params[f"{projection}_kernel"]
        rows = kernel.shape[0] if projection != "output" else kernel.shape[0] * kernel.shape[1]
        matrix = builder.initializer(kernel.reshape(rows, -1).astype(np.float32), f"{self.name}_{projection}_kernel")
        if f"{projection}_bias" not in params:
            return builder.node("MatMul", [x, matrix], hint)
        product = builder.node("MatMul", [x, matrix], f"{self.name}_{projection}_matmul")
        bias = builder.initializer(
            params[f"{projection}_bias"].reshape(-1).astype(np.float32), f"{self.name}_{projection}_bias"
        )
        return builder.node("Add", [product, bias], hint)

    def _onnx_project(self, builder, params: Params, role: str, x: str, perm: list[int]) -> str:
        """The role's projection split into heads and transposed by ``perm`` from ``(N, steps, heads, dim)``."""
        projected = self._onnx_dense(builder, params, role, x, f"{self.name}_{role}")
        heads = builder.constant_int64([0, 0, self.heads, -1], f"{self.name}_{role}_heads")
        split = builder.node("Reshape", [projected, heads], f"{self.name}_{role}_split")
        return builder.node("Transpose", [split], f"{self.name}_{role}_heads", perm=perm)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.modules import MultiHeadAttention

        return MultiHeadAttention(node, params)
