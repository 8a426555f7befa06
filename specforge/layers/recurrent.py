"""Recurrent layers over sequences ``(steps, features)``: SimpleRNN, LSTM and GRU with Keras 3's options, defaults
and weight layouts, and Bidirectional, which runs one of them over the sequence both ways.

A cell's step is ``x_t @ kernel + h @ recurrent_kernel + bias`` through its gates. The input projection of every
step is one matrix product over the whole batch of sequences (``ops.dense``), made before the time loop; the loop
then makes one product per step with the recurrent kernel (GRU without ``reset_after``: two, its candidate takes
the reset hidden state). Back-propagation through time runs the loop backwards with one product per step for the
hidden state's gradient, and makes the kernels' gradients afterwards as one product each over all the steps.

A mask of the steps (``Layer.masking``, Keras' from ``Embedding(mask_zero)``) carries the states over the steps it
hides, as Keras' ``backend.rnn`` does; their gradient then goes straight to the state before them.

Keras' gate orders: LSTM ``i, f, c, o`` (input, forget, cell candidate, output), GRU ``z, r, h`` (update, reset,
candidate). ONNX's recurrent ops and PyTorch's modules take other orders; each kind names its permutation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from specforge import ops
from specforge.base.layout import NHWC
from specforge.layers.base import Layer, Params, Shape, initializer_schema
from specforge.layers.sequence import require_sequence
from specforge.options import activations
from specforge.options.activations import ActivationFunction
from specforge.options.initializers import compute_fans, initialize

#: The activations a recurrent cell may apply: those ONNX's RNN, GRU and LSTM ops name, with their
#: parameters (name -> (ONNX function, alpha, beta); None: the function takes none).
ONNX_ACTIVATIONS: dict[str, tuple[str, float | None, float | None]] = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "elu": ("Elu", 1.0, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5),
}


def _activation_schema(default: str, what: str) -> dict:
    return {
        "description": f"{what}; one of the functions ONNX's recurrent ops apply (Keras 3's definitions).",
        "enum": list(ONNX_ACTIVATIONS),
        "default": default,
    }


def _flag(default: bool, description: str) -> dict:
    return {"type": "boolean", "default": default, "description": description}


_COMMON_SCHEMA: dict[str, dict] = {
    "units": {"type": "integer", "minimum": 1, "description": "Size of the hidden state (and of each output)."},
    "activation": _activation_schema("tanh", "Activation of the hidden state (and of an LSTM's cell candidate)"),
    "use_bias": _flag(True, "Whether the cell adds a learned bias to each gate."),
    "kernel_initializer": initializer_schema("glorot_uniform", "kernel (features, gates * units)"),
    "recurrent_initializer": initializer_schema("orthogonal", "recurrent kernel (units, gates * units)"),
    "bias_initializer": initializer_schema("zeros", "bias"),
    "dropout": {
        "type": "number",
        "minimum": 0,
        "exclusiveMaximum": 1,
        "default": 0,
        "description": "Fraction of the input features dropped during training, one mask per sequence "
        "shared by all its steps (Keras' dropout); drawn from the run's random generator.",
    },
    "return_sequences": _flag(
        False, "Output the hidden state of every step, (steps, units), instead of the last one, (units,)."
    ),
    "go_backwards": _flag(
        False, "Read the sequence from its last step; the output sequence comes in that (reversed) order, as Keras'."
    ),
}
#: ONNX's codes of the int32 and int64 tensor types (onnx.TensorProto's, which is not imported by the layers)
_ONNX_INT32, _ONNX_INT64 = 6, 7
#: parameter -> the option naming its initializer
_INITIALIZER_OPTIONS = {
    "kernel": "kernel_initializer",
    "recurrent_kernel": "recurrent_initializer",
    "bias": "bias_initializer",
}
_RECURRENT_ACTIVATION = _activation_schema("sigmoid", "Activation of the gates")


def _input_mask(rng: np.random.Generator | None, shape: tuple[int, int], rate: float, dtype) -> np.ndarray:
    """Inverted dropout's mask of the input features: 0 with probability ``rate``, ``1 / (1 - rate)`` otherwise."""
    if rng is None:
        raise ValueError("a recurrent layer's dropout in training needs a random generator: pass rng")
    mask = (rng.random(shape, dtype=np.float32) >= rate).astype(dtype)
    mask *= 1 / (1 - rate)
    return mask


@dataclass
class _Pass:
    """What the backward of one forward pass needs: the input projection's record, the slices of the batch the
    time loop ran on (``ops.shards``) and, for each, its hidden states ``(steps + 1, part, units)`` from the
    initial zeros on and the cell's own per-step values; the dropout mask, the input's shape and the steps that
    count (``(steps, N, 1)`` in reading order, None without a mask of the steps)."""

    projection: ops.DenseRecord
    parts: list[slice]
    runs: list[tuple[np.ndarray, Any]]
    mask: np.ndarray | None
    shape: tuple[int, ...]
    keep: np.ndarray | None = None


def _carry(states: np.ndarray, t: int, keep: np.ndarray | None) -> None:
    """Keras' masked step: where step ``t`` does not count (``keep[t]`` false) the state after it is the state
    before it, carried over."""
    if keep is not None:
        states[t + 1] = np.where(keep[t], states[t + 1], states[t])


def _split_skipped(dstate: np.ndarray, t: int, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A state's gradient after step ``t`` parted into what goes through the step's cell (the rows where the step
    counts) and what goes straight to the state before it (where ``_carry`` carried it; None without a mask)."""
    if keep is None:
        return dstate, None
    return np.where(keep[t], dstate, 0), np.where(keep[t], 0, dstate)


def _with_skipped(dstate: np.ndarray, skipped: np.ndarray | None) -> np.ndarray:
    return dstate if skipped is None else dstate + skipped


class Recurrent(Layer):
    """What SimpleRNN, LSTM and GRU share: options, shapes, parameters, the time loop around a kind's step and
    the ONNX op; a kind writes its step forward and backward (``run``, ``run_backward``) and its gate order."""

    gates: ClassVar[int]
    #: The ONNX op computing the kind.
    onnx_op: ClassVar[str]
    #: For each gate of the ONNX op, in its order, Keras' index of that gate.
    onnx_gates: ClassVar[tuple[int, ...]]
    #: For each gate of the PyTorch module, in its order, Keras' index of that gate.
    torch_gates: ClassVar[tuple[int, ...]]
    applies_activation = True
    masking = "take"
    #: Whether the steps a mask hides output zeros rather than the output before them (Keras'
    #: ``zero_output_for_mask``, which Bidirectional sets on its layers that return sequences).
    zero_masked_outputs = False

    def __init__(self, config: dict[str, Any], name: str | None = None):
        super().__init__(config, name)
        self.activation = activations.create(self.config["activation"])
        self.gate_activation = activations.create(self.config.get("recurrent_activation", "sigmoid"))

    def passes_mask(self) -> bool:
        """An output sequence carries the input's mask; the last state, none (Keras' ``compute_mask``)."""
        return bool(self.config["return_sequences"])

    # -- shapes and sizes ---------------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        steps, _ = require_sequence(self.type, input_shape)
        units = self.config["units"]
        return (steps, units) if self.config["return_sequences"] else (units,)

    def bias_shape(self) -> Shape:
        return (self.gates * self.config["units"],)

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        _, features = require_sequence(self.type, input_shape)
        width = self.gates * self.config["units"]
        shapes: dict[str, Shape] = {"kernel": (features, width), "recurrent_kernel": (self.config["units"], width)}
        if self.config["use_bias"]:
            shapes["bias"] = self.bias_shape()
        return shapes

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        return {
            name: initialize(self.config[_INITIALIZER_OPTIONS[name]], shape, *compute_fans(shape), rng)
            for name, shape in self.param_shapes(input_shape).items()
        }

    def flops(self, input_shape: Shape) -> int:
        steps, features = require_sequence(self.type, input_shape)
        return 2 * steps * (features + self.config["units"]) * self.gates * self.config["units"]

    # -- the kind's step -------------------------------------------------------------------------------
    def input_bias(self, params: Params) -> np.ndarray | None:
        """The part of the bias added to the input projection (all of it but for GRU's reset_after)."""
        return params.get("bias")

    def run(self, params: Params, projected: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """The time loop over ``projected`` ``(steps, N, gates * units)``: the hidden states ``(steps + 1, N,
        units)`` (the first the initial zeros) and what ``run_backward`` needs. ``keep`` ``(steps, N, 1)``: the
        steps that count; at the others the states are carried over (``_carry``)."""
        raise NotImplementedError

    def run_backward(
        self, params: Params, hidden: np.ndarray, cell: Any, dhidden: np.ndarray, keep: np.ndarray | None = None
    ) -> tuple[np.ndarray, Params]:
        """The gradient of the projections ``(steps, N, gates * units)`` and of the recurrent parameters, given
        that of the hidden states after each step ``dhidden`` ``(steps, N, units)`` (and the ``keep`` of ``run``)."""
        raise NotImplementedError

    def gate_blocks(self, value: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
        """``value``'s last axis, ``gates`` blocks of ``units``, put in ``order`` (Keras' index per block)."""
        blocks = value.reshape(*value.shape[:-1], self.gates, self.config["units"])
        return blocks[..., list(order), :].reshape(value.shape)

    # -- math ------------------------------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
        *,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        rate = self.config["dropout"]
        dropped = _input_mask(rng, (len(x), x.shape[2]), rate, x.dtype) if training and rate > 0 else None
        steps_first = (x if dropped is None else x * dropped[:, None]).transpose(1, 0, 2)
        if self.config["go_backwards"]:
            steps_first = steps_first[::-1]
        steps, n, features = steps_first.shape
        flat = np.ascontiguousarray(steps_first).reshape(steps * n, features)
        projected, record = ops.dense(flat, params["kernel"], self.input_bias(params))
        projected = projected.reshape(steps, n, -1)
        # the examples' loops are independent: the batch is split across the cores, BLAS at one thread
        units = self.config["units"]
        step = ops.Work.product(1, units, self.gates * units, x.itemsize)
        parts = ops.shards(n, (step + ops.Work.passes(self.gates * units, ops.ACTIVATION_PASSES, x.itemsize)) * steps)
        keep = None if mask is None else self.steps_kept(mask)
        runs = ops.in_parallel(
            lambda part: self.run(params, projected[:, part], None if keep is None else keep[:, part]), parts
        )
        if self.config["return_sequences"]:
            sequence = np.concatenate([hidden[1:] for hidden, _ in runs], axis=1)
            if keep is not None and self.zero_masked_outputs:
                sequence = np.where(keep, sequence, 0)
            y = sequence.transpose(1, 0, 2).copy()
        else:
            y = np.concatenate([hidden[-1] for hidden, _ in runs])
        return y, _Pass(record, parts, runs, dropped, x.shape, keep)

    def steps_kept(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` ``(N, steps)`` as the time loop reads it: ``(steps, N, 1)``, reversed when it goes backwards."""
        keep = mask.T[:, :, None]
        return np.ascontiguousarray(keep[::-1] if self.config["go_backwards"] else keep)

    def backward(
        self, params: Params, cache: _Pass, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        n, steps, features = cache.shape
        units = self.config["units"]
        dtype = np.result_type(dy, params["recurrent_kernel"])
        if self.config["return_sequences"]:
            dhidden = np.ascontiguousarray(dy.transpose(1, 0, 2))
        else:
            dhidden = np.zeros((steps, n, units), dtype)
            dhidden[-1] = dy
        keep = cache.keep
        if keep is not None and self.zero_masked_outputs and self.config["return_sequences"]:
            dhidden = np.where(keep, dhidden, 0)
        dprojected = np.empty((steps, n, self.gates * units), dtype)

        def shard(index: int) -> Params:
            part = cache.parts[index]
            hidden, cell = cache.runs[index]
            dprojected[:, part], grads = self.run_backward(
                params, hidden, cell, dhidden[:, part], None if keep is None else keep[:, part]
            )
            return grads

        shard_grads = ops.in_parallel(shard, range(len(cache.parts)))
        grads = {name: ops.sum_in_order([each[name] for each in shard_grads]) for name in shard_grads[0]}
        dflat, dkernel, dbias = ops.dense_gradients(cache.projection, dprojected.reshape(steps * n, -1), need_dx)
        grads["kernel"] = dkernel
        if dbias is not None:
            grads["bias"] = self.with_input_bias_gradient(grads.get("bias"), dbias)
        grads = {name: grads[name] for name in params}
        if dflat is None:
            return None, grads
        dx = dflat.reshape(steps, n, features)
        if self.config["go_backwards"]:
            dx = dx[::-1]
        dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
        if cache.mask is not None:
            dx *= cache.mask[:, None]
        return dx, grads

    def with_input_bias_gradient(self, recurrent: np.ndarray | None, dbias: np.ndarray) -> np.ndarray:
        """The bias's gradient from that of its input part (and of its recurrent part, GRU's reset_after)."""
        return dbias

    # -- export ----------------------------------------------------------------------------------------
    def onnx_weights(self, params: Params) -> list[np.ndarray]:
        """``W`` ``(gates * units, features)``, ``R`` ``(gates * units, units)`` and, with a bias, ``B``
        ``(2 * gates * units,)`` (the input then the recurrent biases), in the ONNX op's gate order."""
        kernel = self.gate_blocks(params["kernel"], self.onnx_gates).T
        recurrent = self.gate_blocks(params["recurrent_kernel"], self.onnx_gates).T
        if "bias" not in params:
            return [kernel, recurrent]
        bias = params["bias"].reshape(-1, self.gates * self.config["units"])
        both = np.concatenate([bias, np.zeros_like(bias)]) if len(bias) == 1 else bias
        return [kernel, recurrent, self.gate_blocks(both, self.onnx_gates).reshape(-1)]

    def onnx_activations(self) -> list[str]:
        """Keras' names of the op's activation functions, in its order (ONNX's f, g, h)."""
        return [self.config["activation"]]

    def onnx_attributes(self) -> dict[str, Any]:
        return {}

    def to_onnx(self, builder, params: Params, input_name: str, *, mask: str | None = None) -> str:
        direction = "reverse" if self.config["go_backwards"] else "forward"
        sequence, last = recurrent_onnx(builder, [(self, params)], input_name, direction, mask)
        if not self.config["return_sequences"]:
            return builder.node("Squeeze", [last, builder.constant_int64([0], f"{self.name}_axis")], self.name)
        one = builder.node("Squeeze", [sequence, builder.constant_int64([1], f"{self.name}_axis")], f"{self.name}_y")
        if self.config["go_backwards"]:  # Keras' order: the step read first comes first
            one = reverse_steps(builder, one, 0, f"{self.name}_reversed")
        return builder.node("Transpose", [one], self.name, perm=[1, 0, 2], layout=NHWC)

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.recurrent import Recurrent as RecurrentModule

        return RecurrentModule(node, params)


def recurrent_onnx(
    builder, cells: list[tuple[Recurrent, Params]], input_name: str, direction: str, mask: str | None = None
) -> tuple[str, str]:
    """The ONNX op of one cell (``forward`` or ``reverse``) or two (``bidirectional``: the first reads forwards)
    on the sequence ``input_name``: its outputs ``Y`` ``(steps, directions, N, units)`` and ``Y_h``
    ``(directions, N, units)``, ``Y`` in the input's step order whatever the direction.

    With a ``mask`` of the steps (float ``(N, steps)``, 1 where a step counts) the outputs are Keras': the steps
    that count are moved to the front of each sequence in their order (``compact_steps``), the op reads as many
    as there are (its ``sequence_lens``), which skips the others as Keras' carrying of the state over them does,
    wherever they are; each output step then takes the state after the last step read up to it
    (``masked_outputs``)."""
    layer = cells[0][0]
    hint = layer.name
    sequence = builder.to_layout(input_name, NHWC)
    steps = builder.shape(input_name)[0]
    if mask is not None:
        sequence = compact_steps(builder, sequence, mask, steps, hint)
    steps_first = builder.node("Transpose", [sequence], f"{hint}_steps_first", perm=[1, 0, 2])
    weights = list(zip(*(layer.onnx_weights(params) for layer, params in cells)))
    inputs = [steps_first]
    for what, arrays in zip(("W", "R", "B"), weights):
        inputs.append(builder.initializer(np.stack(arrays).astype(np.float32), f"{hint}_{what}"))
    if mask is not None:
        if len(weights) < 3:
            inputs.append("")  # no bias: the optional input left out
        axis = builder.constant_int64([1], f"{hint}_steps_axis")
        count = builder.node("ReduceSum", [mask, axis], f"{hint}_count", keepdims=1)  # (N, 1)
        one = builder.initializer(np.ones((), np.float32), f"{hint}_one")
        read = builder.node("Max", [count, one], f"{hint}_read")  # an op reads one step at least
        lengths = builder.node("Squeeze", [read, axis], f"{hint}_lengths")
        inputs.append(builder.node("Cast", [lengths], f"{hint}_sequence_lens", to=_ONNX_INT32))
    functions = [ONNX_ACTIVATIONS[name] for cell, _ in cells for name in cell.onnx_activations()]
    attributes: dict[str, Any] = {"activations": [function for function, _, _ in functions]}
    alphas = [alpha for _, alpha, _ in functions if alpha is not None]
    betas = [beta for _, _, beta in functions if beta is not None]
    if alphas:
        attributes["activation_alpha"] = alphas
    if betas:
        attributes["activation_beta"] = betas
    attributes.update(layer.onnx_attributes())
    y, last = builder.node(
        layer.onnx_op,
        inputs,
        f"{hint}_{layer.onnx_op.lower()}",
        outputs=2,
        direction=direction,
        hidden_size=layer.config["units"],
        **attributes,
    )
    if mask is None:
        return y, last
    last = builder.node("Mul", [last, builder.node("Min", [count, one], f"{hint}_any")], f"{hint}_last")
    if not layer.config["return_sequences"]:
        return y, last
    return masked_sequence(builder, cells, y, mask, count, steps, direction), last


def compact_steps(builder, sequence: str, mask: str, steps: int, hint: str) -> str:
    """``sequence`` ``(N, steps, features)`` with the steps that count first, in their order, then the others."""
    position = builder.initializer(np.arange(steps, dtype=np.float32), f"{hint}_position")
    hidden = builder.node("Sub", [builder.initializer(np.ones((), np.float32), f"{hint}_all"), mask], f"{hint}_hid")
    past = builder.node("Mul", [hidden, builder.initializer(np.float32(steps), f"{hint}_steps")], f"{hint}_past")
    key = builder.node("Add", [position, past], f"{hint}_key")
    k = builder.constant_int64([steps], f"{hint}_k")
    order = builder.node("TopK", [key, k], f"{hint}_order", outputs=2, axis=1, largest=0, sorted=1)[1]
    return gather_steps(builder, sequence, order, f"{hint}_compacted")


def gather_steps(builder, sequence: str, index: str, hint: str) -> str:
    """``sequence`` ``(N, steps, features)``'s steps ``index`` ``(N, steps)`` (int64) of each example."""
    wide = builder.node("Unsqueeze", [index, builder.constant_int64([2], f"{hint}_axis")], f"{hint}_index")
    shape = builder.node("Shape", [sequence], f"{hint}_shape")
    return builder.node("GatherElements", [sequence, builder.node("Expand", [wide, shape], hint)], hint, axis=1)


def masked_sequence(
    builder, cells: list[tuple[Recurrent, Params]], y: str, mask: str, count: str, steps: int, direction: str
) -> str:
    """The op's output sequence on the compacted steps as Keras' on the masked sequence (``count``: the steps
    that count, ``(N, 1)``). A direction reading forwards gives step t the state after the steps that count up
    to t (those before the first: zeros); one reading backwards, after those from t on; where a layer zeroes
    the masked steps' outputs (``zero_masked_outputs``), those are zeros."""
    hint = cells[0][0].name
    one = builder.initializer(np.ones((), np.float32), f"{hint}_unit")
    through = builder.node(
        "CumSum", [mask, builder.initializer(np.asarray(1, np.int64), f"{hint}_cumsum_axis")], f"{hint}_through"
    )
    before = builder.node("Sub", [through, mask], f"{hint}_before")
    readings = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    outputs = []
    for index, reading in enumerate(readings):
        if reading == "forward":
            source = builder.node("Sub", [through, one], f"{hint}_{reading}_source")
            valid = builder.node("Min", [through, one], f"{hint}_{reading}_valid")
        else:
            source = before
            valid = builder.node("Min", [builder.node("Sub", [count, before], f"{hint}_after"), one], f"{hint}_v")
        if cells[0][0].zero_masked_outputs:
            valid = mask
        limits = [
            builder.initializer(np.float32(bound), f"{hint}_{what}") for what, bound in (("lo", 0), ("hi", steps - 1))
        ]
        clipped = builder.node("Clip", [source, *limits], f"{hint}_{reading}_clipped")
        source_index = builder.node("Cast", [clipped], f"{hint}_{reading}_index", to=_ONNX_INT64)
        picked = builder.initializer(np.asarray([index], np.int64), f"{hint}_{reading}_direction")
        states = builder.node("Gather", [y, picked], f"{hint}_{reading}_states", axis=1)  # (steps, 1, N, units)
        batch_first = builder.node("Transpose", [states], f"{hint}_{reading}_batch_first", perm=[2, 0, 1, 3])
        flat = builder.node("Squeeze", [batch_first, builder.constant_int64([2], f"{hint}_{reading}_sq")], f"{hint}_s")
        taken = gather_steps(builder, flat, source_index, f"{hint}_{reading}_taken")
        weight = builder.node("Unsqueeze", [valid, builder.constant_int64([2], f"{hint}_{reading}_w")], f"{hint}_w")
        kept = builder.node("Mul", [taken, weight], f"{hint}_{reading}_kept")  # (N, steps, units)
        back = builder.node("Transpose", [kept], f"{hint}_{reading}_steps", perm=[1, 0, 2])
        outputs.append(
            builder.node("Unsqueeze", [back, builder.constant_int64([1], f"{hint}_{reading}_d")], f"{hint}_{reading}_y")
        )
    return outputs[0] if len(outputs) == 1 else builder.node("Concat", outputs, f"{hint}_directions", axis=1)


def reverse_steps(builder, name: str, axis: int, hint: str) -> str:
    """``name`` with its axis ``axis`` (the steps) in reverse order, made by a node hinted ``hint``."""
    constants = [
        builder.constant_int64(values, f"{hint}_{what}")
        for what, values in (("starts", [-1]), ("ends", [-(2**63)]), ("axes", [axis]), ("steps", [-1]))
    ]
    return builder.node("Slice", [name, *constants], hint)


class SimpleRNN(Recurrent):
    type = "SimpleRNN"
    description = (
        "Fully connected recurrent layer: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias), "
        "over a sequence (steps, features)."
    )
    schema = _COMMON_SCHEMA
    required = ("units",)
    examples = [
        ({"units": 3}, (4, 2)),
        ({"units": 2, "return_sequences": True, "go_backwards": True, "dropout": 0.3}, (3, 3)),
        ({"units": 2, "activation": "linear", "use_bias": False, "return_sequences": True}, (3, 2)),
    ]
    gates = 1
    onnx_op = "RNN"
    onnx_gates = torch_gates = (0,)

    def run(self, params, projected, keep=None):
        recurrent = params["recurrent_kernel"]
        steps, n, units = projected.shape
        hidden = np.zeros((steps + 1, n, units), np.result_type(projected, recurrent))
        before = np.empty_like(hidden[1:])
        for t in range(steps):
            np.add(projected[t], hidden[t] @ recurrent, out=before[t])
            hidden[t + 1] = self.activation.forward(before[t])
            _carry(hidden, t, keep)
        return hidden, before

    def run_backward(self, params, hidden, cell, dhidden, keep=None):
        recurrent = params["recurrent_kernel"]
        dbefore = np.empty(cell.shape, np.result_type(dhidden, recurrent))
        dh = np.zeros_like(dhidden[0])
        for t in reversed(range(len(dhidden))):
            dh, skipped = _split_skipped(dh + dhidden[t], t, keep)
            dbefore[t] = self.activation.backward(cell[t], hidden[t + 1], dh)
            dh = _with_skipped(dbefore[t] @ recurrent.T, skipped)
        return dbefore, {"recurrent_kernel": _summed_product(hidden[:-1], dbefore)}


def _summed_product(inputs: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """``sum_t inputs[t].T @ gradients[t]``: a kernel's gradient over every step, as one product."""
    return inputs.reshape(-1, inputs.shape[-1]).T @ gradients.reshape(-1, gradients.shape[-1])


class LSTM(Recurrent):
    type = "LSTM"
    description = (
        "Long short-term memory over a sequence (steps, features): input, forget and output gates "
        "(recurrent_activation) around a cell state; Keras' weight layout, gates in the order i, f, c, o."
    )
    schema = {
        **_COMMON_SCHEMA,
        "recurrent_activation": _RECURRENT_ACTIVATION,
        "unit_forget_bias": _flag(
            True, "Start the forget gate's bias at 1 (the rest of the bias from bias_initializer), as Keras."
        ),
    }
    required = ("units",)
    examples = [
        ({"units": 3}, (4, 2)),
        ({"units": 2, "return_sequences": True, "go_backwards": True, "dropout": 0.25}, (3, 3)),
        ({"units": 2, "use_bias": False, "unit_forget_bias": False, "return_sequences": True}, (2, 2)),
    ]
    gates = 4
    onnx_op = "LSTM"
    onnx_gates = (0, 3, 1, 2)
    torch_gates = (0, 1, 2, 3)

    def init_params(self, input_shape, rng):
        params = super().init_params(input_shape, rng)
        if "bias" in params and self.config["unit_forget_bias"]:
            units = self.config["units"]
            params["bias"][units : 2 * units] = 1
        return params

    def run(self, params, projected, keep=None):
        recurrent = params["recurrent_kernel"]
        steps, n, width = projected.shape
        units = width // 4
        dtype = np.result_type(projected, recurrent)
        hidden = np.zeros((steps + 1, n, units), dtype)
        cells = np.zeros((steps + 1, n, units), dtype)
        before = np.empty((steps, n, width), dtype)
        gates = np.empty_like(before)
        squashed = np.empty((steps, n, units), dtype)
        for t in range(steps):
            np.add(projected[t], hidden[t] @ recurrent, out=before[t])
            gates[t] = self.gate_activation.forward(before[t])
            gates[t, :, 2 * units : 3 * units] = self.activation.forward(before[t, :, 2 * units : 3 * units])
            i, f, c, o = np.split(gates[t], 4, axis=1)
            cells[t + 1] = f * cells[t] + i * c
            squashed[t] = self.activation.forward(cells[t + 1])
            hidden[t + 1] = o * squashed[t]
            _carry(cells, t, keep)
            _carry(hidden, t, keep)
        return hidden, (before, gates, cells, squashed)

    def run_backward(self, params, hidden, cell, dhidden, keep=None):
        before, gates, cells, squashed = cell
        recurrent = params["recurrent_kernel"]
        dbefore = np.empty(before.shape, np.result_type(dhidden, recurrent))
        dh = np.zeros_like(dhidden[0])
        dc = np.zeros_like(dh)
        units = dh.shape[1]
        candidate = slice(2 * units, 3 * units)
        for t in reversed(range(len(dhidden))):
            dh, skipped = _split_skipped(dh + dhidden[t], t, keep)
            dc, cell_skipped = _split_skipped(dc, t, keep)
            i, f, c, o = np.split(gates[t], 4, axis=1)
            dc += self.activation.backward(cells[t + 1], squashed[t], dh * o)
            dgates = np.concatenate([dc * c, dc * cells[t], dc * i, dh * squashed[t]], axis=1)
            dbefore[t] = self.gate_activation.backward(before[t], gates[t], dgates)
            dbefore[t, :, candidate] = self.activation.backward(before[t, :, candidate], c, dgates[:, candidate])
            dc = _with_skipped(dc * f, cell_skipped)
            dh = _with_skipped(dbefore[t] @ recurrent.T, skipped)
        return dbefore, {"recurrent_kernel": _summed_product(hidden[:-1], dbefore)}

    def onnx_activations(self):
        activation = self.config["activation"]
        return [self.config["recurrent_activation"], activation, activation]


class GRU(Recurrent):
    type = "GRU"
    description = (
        "Gated recurrent unit over a sequence (steps, features): update and reset gates (recurrent_activation) "
        "and a candidate state; Keras' weight layout, gates in the order z, r, h."
    )
    schema = {
        **_COMMON_SCHEMA,
        "recurrent_activation": _RECURRENT_ACTIVATION,
        "reset_after": _flag(
            True,
            "Apply the reset gate after the recurrent product (Keras 3's default, cuDNN's and PyTorch's "
            "formulation), with separate input and recurrent biases: bias (2, 3 * units). false: before it, "
            "one bias (3 * units,).",
        ),
    }
    required = ("units",)
    examples = [
        ({"units": 3}, (4, 2)),
        ({"units": 2, "return_sequences": True, "go_backwards": True, "dropout": 0.25}, (3, 3)),
        ({"units": 2, "reset_after": False, "return_sequences": True}, (3, 2)),
        ({"units": 2, "reset_after": False, "use_bias": False, "go_backwards": True}, (2, 3)),
    ]
    gates = 3
    onnx_op = "GRU"
    onnx_gates = (0, 1, 2)
    torch_gates = (1, 0, 2)

    def bias_shape(self):
        width = self.gates * self.config["units"]
        return (2, width) if self.config["reset_after"] else (width,)

    def input_bias(self, params):
        bias = params.get("bias")
        return bias[0] if bias is not None and self.config["reset_after"] else bias

    def with_input_bias_gradient(self, recurrent, dbias):
        return dbias if recurrent is None else np.stack([dbias, recurrent])

    def run(self, params, projected, keep=None):
        recurrent = params["recurrent_kernel"]
        recurrent_bias = params["bias"][1] if "bias" in params and self.config["reset_after"] else None
        steps, n, width = projected.shape
        units = width // 3
        dtype = np.result_type(projected, recurrent)
        hidden = np.zeros((steps + 1, n, units), dtype)
        before = np.empty((steps, n, width), dtype)
        gates = np.empty_like(before)
        inner = np.empty((steps, n, units), dtype)  # reset_after: h @ U_h + b_h; before: (r * h)
        for t in range(steps):
            h = hidden[t]
            if self.config["reset_after"]:
                product = h @ recurrent
                if recurrent_bias is not None:
                    product += recurrent_bias
                np.add(projected[t, :, : 2 * units], product[:, : 2 * units], out=before[t, :, : 2 * units])
                gates[t, :, : 2 * units] = self.gate_activation.forward(before[t, :, : 2 * units])
                inner[t] = product[:, 2 * units :]
                before[t, :, 2 * units :] = projected[t, :, 2 * units :] + gates[t, :, units : 2 * units] * inner[t]
            else:
                np.add(projected[t, :, : 2 * units], h @ recurrent[:, : 2 * units], out=before[t, :, : 2 * units])
                gates[t, :, : 2 * units] = self.gate_activation.forward(before[t, :, : 2 * units])
                inner[t] = gates[t, :, units : 2 * units] * h
                before[t, :, 2 * units :] = projected[t, :, 2 * units :] + inner[t] @ recurrent[:, 2 * units :]
            gates[t, :, 2 * units :] = self.activation.forward(before[t, :, 2 * units :])
            z, _, candidate = np.split(gates[t], 3, axis=1)
            hidden[t + 1] = z * h + (1 - z) * candidate
            _carry(hidden, t, keep)
        return hidden, (before, gates, inner)

    def run_backward(self, params, hidden, cell, dhidden, keep=None):
        before, gates, inner = cell
        recurrent = params["recurrent_kernel"]
        reset_after = self.config["reset_after"]
        dtype = np.result_type(dhidden, recurrent)
        dbefore = np.empty(before.shape, dtype)
        drecurrent = np.empty(before.shape, dtype) if reset_after else None
        dh = np.zeros_like(dhidden[0])
        units = dh.shape[1]
        gated, last = slice(0, 2 * units), slice(2 * units, 3 * units)
        for t in reversed(range(len(dhidden))):
            dh, skipped = _split_skipped(dh + dhidden[t], t, keep)
            h = hidden[t]
            z, r, candidate = np.split(gates[t], 3, axis=1)
            dcandidate = self.activation.backward(before[t, :, last], candidate, dh * (1 - z))
            dbefore[t, :, last] = dcandidate
            if reset_after:
                dr = dcandidate * inner[t]
            else:
                dinner = dcandidate @ recurrent[:, last].T
                dr = dinner * h
            dgates = np.concatenate([dh * (h - candidate), dr], axis=1)
            dbefore[t, :, gated] = self.gate_activation.backward(before[t, :, gated], gates[t, :, gated], dgates)
            if drecurrent is not None:
                drecurrent[t, :, gated] = dbefore[t, :, gated]
                drecurrent[t, :, last] = dcandidate * r
                dh = _with_skipped(dh * z + drecurrent[t] @ recurrent.T, skipped)
            else:
                dh = _with_skipped(dh * z + dinner * r + dbefore[t, :, gated] @ recurrent[:, gated].T, skipped)
        if drecurrent is not None:
            grads = {"recurrent_kernel": _summed_product(hidden[:-1], drecurrent)}
            if "bias" in params:
                grads["bias"] = drecurrent.reshape(-1, drecurrent.shape[2]).sum(axis=0)
            return dbefore, grads
        dkernel = np.concatenate(
            [_summed_product(hidden[:-1], dbefore[:, :, gated]), _summed_product(inner, dbefore[:, :, last])], axis=1
        )
        return dbefore, {"recurrent_kernel": dkernel}

    def onnx_activations(self):
        return [self.config["recurrent_activation"], self.config["activation"]]

    def onnx_attributes(self):
        return {"linear_before_reset": int(self.config["reset_after"])}


#: The kinds Bidirectional wraps, by type.
RECURRENT_KINDS: dict[str, type[Recurrent]] = {cls.type: cls for cls in (SimpleRNN, LSTM, GRU)}


def _inner_schema(cls: type[Recurrent]) -> dict:
    return {
        "type": "object",
        "properties": {"type": {"const": cls.type, "description": cls.description}, **cls.schema},
        "required": ["type", *cls.required],
        "additionalProperties": False,
    }


#: How Bidirectional may merge its two outputs (Keras' merge_mode).
_MERGES = ("concat", "sum", "mul", "ave")


class Bidirectional(Layer):
    type = "Bidirectional"
    description = (
        "Runs a recurrent layer (layer) over the sequence forwards and a copy of it with go_backwards flipped, "
        "the backward layer's output sequence put back in step order, and merges the two (merge_mode); "
        "parameters forward_* and backward_*, as Keras'."
    )
    schema = {
        "layer": {
            "description": "The recurrent layer to run both ways: a SimpleRNN, LSTM or GRU with its options, "
            "e.g. {type: LSTM, units: 32}.",
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(RECURRENT_KINDS), "description": "The recurrent kind."}},
            "allOf": [
                {"if": {"properties": {"type": {"const": kind}}}, "then": _inner_schema(cls)}
                for kind, cls in RECURRENT_KINDS.items()
            ],
        },
        "merge_mode": {
            "enum": list(_MERGES),
            "default": "concat",
            "description": "How the two outputs combine: concat (units * 2 features), sum, mul or ave.",
        },
    }
    required = ("layer",)
    examples = [
        ({"layer": {"type": "LSTM", "units": 2}}, (3, 2)),
        ({"layer": {"type": "GRU", "units": 2, "return_sequences": True}, "merge_mode": "sum"}, (3, 2)),
        ({"layer": {"type": "SimpleRNN", "units": 2, "return_sequences": True}, "merge_mode": "mul"}, (3, 3)),
        ({"layer": {"type": "LSTM", "units": 2, "go_backwards": True, "dropout": 0.25}, "merge_mode": "ave"}, (3, 2)),
        ({"layer": {"type": "GRU", "units": 2, "return_sequences": True, "go_backwards": True}}, (2, 2)),
        ({"layer": {"type": "SimpleRNN", "units": 2, "return_sequences": True}}, (3, 2)),
    ]
    #: The parameter prefixes of the two layers, as Keras names them.
    DIRECTIONS = ("forward_", "backward_")
    masking = "take"

    def __init__(self, config: dict[str, Any], name: str | None = None):
        super().__init__(config, name)
        inner = copy.deepcopy(self.config["layer"])
        cls = RECURRENT_KINDS[inner.pop("type")]
        backward = {**inner, "go_backwards": not inner.get("go_backwards", False)}
        self.layers = (
            cls.from_options(inner, f"{self.name}_forward"),
            cls.from_options(backward, f"{self.name}_backward"),
        )
        for layer in self.layers:  # as Keras' Bidirectional: masked steps of its output sequences are zeros
            layer.zero_masked_outputs = layer.config["return_sequences"]

    def passes_mask(self) -> bool:
        return self.returns_sequences

    @property
    def returns_sequences(self) -> bool:
        return bool(self.layers[0].config["return_sequences"])

    def split(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The forward and the backward layer's parameters (or gradients, or shapes)."""
        return tuple(  # type: ignore[return-value]
            {name[len(prefix) :]: value for name, value in params.items() if name.startswith(prefix)}
            for prefix in self.DIRECTIONS
        )

    def join(self, forward: dict[str, Any], backward: dict[str, Any]) -> dict[str, Any]:
        return {
            f"{prefix}{name}": value
            for prefix, part in zip(self.DIRECTIONS, (forward, backward))
            for name, value in part.items()
        }

    # -- shapes and sizes ---------------------------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        shape = self.layers[0].output_shape(input_shape)
        return (*shape[:-1], shape[-1] * 2) if self.config["merge_mode"] == "concat" else shape

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        return self.join(*(layer.param_shapes(input_shape) for layer in self.layers))

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        return self.join(*(layer.init_params(input_shape, rng) for layer in self.layers))

    def flops(self, input_shape: Shape) -> int:
        return sum(layer.flops(input_shape) for layer in self.layers)

    # -- math ------------------------------------------------------------------------------------------
    def _aligned(self, y: np.ndarray) -> np.ndarray:
        """The backward layer's output sequence in the other's step order (a view; itself for a state)."""
        return y[:, ::-1] if self.returns_sequences else y

    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
        *,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        outputs, caches = [], []
        for layer, part in zip(self.layers, self.split(params)):
            y, cache = layer.forward(part, x, training, rng, mask=mask)
            outputs.append(y)
            caches.append(cache)
        first, second = outputs[0], self._aligned(outputs[1])
        mode = self.config["merge_mode"]
        if mode == "concat":
            merged = np.concatenate([first, second], axis=-1)
        elif mode == "sum":
            merged = first + second
        elif mode == "mul":
            merged = first * second
        else:
            merged = (first + second) * 0.5
        return merged, (caches, first, second)

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        caches, first, second = cache
        mode = self.config["merge_mode"]
        if mode == "concat":
            dfirst, dsecond = np.split(dy, 2, axis=-1)
        elif mode == "sum":
            dfirst = dsecond = dy
        elif mode == "mul":
            dfirst, dsecond = dy * second, dy * first
        else:
            dfirst = dsecond = dy * 0.5
        dxs, grads = [], []
        for layer, part, layer_cache, dpart in zip(
            self.layers, self.split(params), caches, (dfirst, self._aligned(dsecond))
        ):
            dx, layer_grads = layer.backward(part, layer_cache, np.ascontiguousarray(dpart), need_dx)
            dxs.append(dx)
            grads.append(layer_grads)
        first_dx, second_dx = dxs
        return (None if first_dx is None or second_dx is None else first_dx + second_dx), self.join(*grads)

    # -- export ----------------------------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str, *, mask: str | None = None) -> str:
        """One bidirectional op: its first direction reads forwards, which is the backward layer's when the
        wrapped layer goes backwards. Its two outputs, in step order, are then merged: concatenated by a reshape of
        the op's output, else taken apart and combined (and the merged sequence reversed when the wrapped layer
        goes backwards: both of Keras' outputs are then in reversed order)."""
        reading = list(zip(self.layers, self.split(params)))
        goes_backwards = bool(self.layers[0].config["go_backwards"])
        if goes_backwards:
            reading.reverse()
        sequence, last = recurrent_onnx(builder, reading, input_name, "bidirectional", mask)
        name = self.name
        mode = self.config["merge_mode"]
        if mode == "concat" and not goes_backwards:  # the directions side by side are the concatenation
            if self.returns_sequences:  # (steps, 2, N, units) -> (N, steps, 2, units) -> (N, steps, 2 * units)
                batch_first = builder.node("Transpose", [sequence], f"{name}_batch_first", perm=[2, 0, 1, 3])
                target = builder.constant_int64([0, 0, -1], f"{name}_shape")
            else:  # (2, N, units) -> (N, 2, units) -> (N, 2 * units)
                batch_first = builder.node("Transpose", [last], f"{name}_batch_first", perm=[1, 0, 2])
                target = builder.constant_int64([0, -1], f"{name}_shape")
            return builder.node("Reshape", [batch_first, target], name, layout=NHWC)
        if self.returns_sequences:  # (steps, 2, N, units) -> (N, steps, 2, units)
            both, axis = builder.node("Transpose", [sequence], f"{name}_batch_first", perm=[2, 0, 1, 3]), 2
        else:  # (2, N, units)
            both, axis = last, 0
        picked = [
            builder.node(
                "Gather",
                [both, builder.initializer(np.asarray(index, np.int64), f"{name}_direction")],
                f"{name}_{prefix}y",
                axis=axis,
            )
            for index, prefix in zip((1, 0) if goes_backwards else (0, 1), self.DIRECTIONS)
        ]
        hint = f"{name}_merged" if goes_backwards and self.returns_sequences else name
        if mode == "concat":
            merged = builder.node("Concat", picked, hint, axis=-1, layout=NHWC)
        elif mode == "mul":
            merged = builder.node("Mul", picked, hint, layout=NHWC)
        elif mode == "sum":
            merged = builder.node("Add", picked, hint, layout=NHWC)
        else:
            total = builder.node("Add", picked, f"{name}_total", layout=NHWC)
            half = builder.initializer(np.asarray(0.5, np.float32), f"{name}_half")
            merged = builder.node("Mul", [total, half], hint, layout=NHWC)
        if goes_backwards and self.returns_sequences:
            return reverse_steps(builder, merged, 1, name)
        return merged

    def to_torch(self, node, params: Params):
        """This layer as a PyTorch module (the PyTorch backend, specforge.training.torch)."""
        from specforge.layers.torch.recurrent import Bidirectional as BidirectionalModule

        return BidirectionalModule(node, params)
