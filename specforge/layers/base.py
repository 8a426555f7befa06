"""The layer contract: one class per layer kind holds everything about that kind.

A kind declares its spec name (``type``), its JSON Schema fragment (``schema``:
property name -> schema, with descriptions and defaults), small valid configs
(``examples``) for the generic tests, and the math: shape rule, parameter
initialisation, FLOPs, forward and backward side by side, ONNX conversion and PyTorch lowering.

Shapes never include the batch axis: an MNIST image is ``(28, 28, 1)``.
Tensors always do: ``x`` has shape ``(N, *input_shape)``, NHWC, float32, or int64 for a kind that
takes integer ids (``input_dtype``); what a layer computes goes through ``specforge.ops``.

Activations given as a layer option (``Conv2D(..., activation: relu)``) are not
applied by the layer: the graph splits them into an ``Activation`` node so that
the loss can take logits (softmax + cross-entropy is fused with log-sum-exp).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from specforge.base.defaults import with_defaults
from specforge.base.errors import ShapeError
from specforge.base.registry import Kind, Registry
from specforge.options.activations import ACTIVATIONS, ActivationFunction
from specforge.options.initializers import INITIALIZERS

Shape = tuple[int, ...]
Params = dict[str, np.ndarray]
L = TypeVar("L", bound="Layer")


#: Every layer kind by its spec ``type``: a subclass of Layer that sets ``type`` joins it as it is defined.
LAYERS: Registry[type[Layer]] = Registry("layer", lambda cls: cls.type)


class Layer(Kind, registry=LAYERS, key="type"):
    """Base class of every layer kind; subclasses fill in the class attributes and the math."""

    type: ClassVar[str]
    description: ClassVar[str] = ""
    schema: ClassVar[dict[str, dict]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    #: ``(config, input_shape)`` pairs: small valid uses of the kind, run by the generic tests (a merge kind's
    #: give a list of shapes, one per input).
    examples: ClassVar[list[tuple[dict, Shape | list[Shape]]]] = []
    #: parameter names that are state, not trained (BatchNormalization's moving statistics); a training
    #: forward returns their update through ``new_state``.
    non_trainable: ClassVar[tuple[str, ...]] = ()
    #: Whether the step planner may hand ``forward`` an ``activation`` to apply to the fresh output in
    #: place (one whose gradient needs only its output); ``backward`` then starts with its gradient.
    #: Kinds that do not fuse are never given one. See specforge.graph.plan.
    fuses_activation: ClassVar[bool] = False
    #: Whether the kind applies its ``activation`` option itself (an activation layer; a recurrent cell, inside
    #: each step) rather than the graph following its node with an Activation node.
    applies_activation: ClassVar[bool] = False
    #: Whether the kind takes a list of inputs (the merges of specforge.layers.merge, MultiHeadAttention): then
    #: ``output_shape`` takes a list of shapes (and the names of the layers they come from), the parameter
    #: methods (``param_shapes``, ``init_params``, ``flops``) that list, ``forward`` a list of batches,
    #: ``backward`` returns a list of gradients and ``to_onnx`` takes a list of tensor names; the list holds
    #: as many items as ``inputs`` names, ``arity`` says how many it may.
    merges: ClassVar[bool] = False
    #: ``(fewest, most)`` inputs of a kind that ``merges`` (most None: no limit). With fewest 1, ``inputs`` may
    #: be left out (the layer before) or name one layer, and the kind still gets a list, of one.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    #: What the kind takes: ``"float"`` values, or ``"int"`` ids (a lookup table's rows). A model whose first
    #: layers take ids gets int64 batches and an int64 ONNX input (``Graph.input_dtype``); such a kind takes
    #: the model's input itself, since no layer outputs ids.
    input_dtype: ClassVar[str] = "float"
    #: What the kind does with a mask of its input's steps (Keras' masking; a mask is ``(N, steps)``, true at
    #: the steps that count, made by ``Embedding(mask_zero: true)``, see ``makes_mask``): ``"pass"``: its output
    #: carries the same mask and it computes as without (a per-step kind: Dense, Dropout, LayerNormalization,
    #: the elementwise merges, which pass their inputs' masks joined); ``"take"``: ``forward`` and ``to_onnx``
    #: take it as the keyword ``mask`` (a merge: a list, None for an input without one) and the output
    #: carries it on when ``passes_mask`` says so (a recurrent kind with return_sequences; MultiHeadAttention
    #: the query's); ``"none"``: the kind does not use masks, and one reaching it is dropped with a warning, as
    #: Keras drops it.
    masking: ClassVar[str] = "none"

    def __init__(self, config: dict[str, Any], name: str | None = None):
        """A layer of a complete ``config``, as validation leaves a spec's layers: every option with a default
        has its value. Code that builds a layer from some of its options calls ``from_options``."""
        config = dict(config)
        config.pop("type", None)
        self.name = config.pop("name", None) or name or self.type.lower()
        missing = [key for key, prop in self.schema.items() if "default" in prop and key not in config]
        if missing:
            raise ShapeError(
                f"{self.type} has no value for {', '.join(missing)}: a layer takes every option (validation fills "
                f"a spec's defaults, {self.type}.from_options those of a layer built in code)"
            )
        self.config = config

    @classmethod
    def from_options(
        cls: builtins.type[L], options: dict[str, Any] | None = None, name: str | None = None, **extra: Any
    ) -> L:
        """A layer of some of its options, the others filled with their defaults as validation fills a spec's
        (``extra``: what a subclass's constructor takes beside them)."""
        return cls(with_defaults({**(options or {}), "type": cls.type}, cls.json_schema()), name, **extra)

    def __repr__(self) -> str:
        return f"{self.type}({self.name!r}, {self.config})"

    @classmethod
    def json_schema(cls) -> dict:
        """The schema of one ``model.layers`` item of this kind."""
        properties = {
            "type": {"const": cls.type, "description": cls.description},
            "name": {
                "type": "string",
                "pattern": LAYER_NAME_PATTERN,
                "description": "Layer name: unique, shown in summaries and ONNX node names, and how other "
                "layers' inputs refer to it. Default: the type in snake case with a counter, "
                "e.g. conv2d_1.",
            },
            "inputs": cls.inputs_schema(),
            **cls.schema,
        }
        return {
            "type": "object",
            "description": cls.description,
            "properties": properties,
            "required": ["type", *(["inputs"] if cls.arity[0] > 1 else []), *cls.required],
            "additionalProperties": False,
            "examples": [{"type": cls.type, **config} for config, _ in cls.examples[:2]],
        }

    @classmethod
    def inputs_schema(cls) -> dict:
        """The schema of the ``inputs`` option: one layer name (a single-input kind), or as many names as the
        kind's ``arity`` allows."""
        if not cls.merges:
            return {
                "description": "The layer whose output this one takes, by name; `input` is the model's input. "
                "Default: the layer before it.",
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
            }
        fewest, most = cls.arity
        names: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "minItems": fewest}
        if most is not None:
            names["maxItems"] = most
        if fewest > 1:
            count = f"exactly {fewest}" if most == fewest else f"{fewest} or more"
            return {**names, "description": f"Names of the {count} layers merged (`input` is the model's input)."}
        return {
            **names,
            "type": ["string", "array"],  # the array keywords hold for a list only
            "description": "The layer or layers whose outputs this one takes, by name "
            f"({'1 or more' if most is None else f'1 to {most}'}); `input` is the model's input. "
            "Default: the layer before it.",
        }

    # -- masks -------------------------------------------------------------------
    def makes_mask(self) -> bool:
        """Whether the output carries a mask the layer makes itself (``Embedding(mask_zero: true)``: the steps
        whose id is not 0), whatever its input carries."""
        return False

    def passes_mask(self) -> bool:
        """Whether the output carries its input's mask on (``masking``: every ``"pass"`` kind, a ``"take"``
        kind as it says)."""
        return self.masking == "pass"

    def mask_inputs(self, inputs: Sequence[int]) -> Sequence[int]:
        """Of the inputs ``inputs``, those whose masks (joined) the output carries when it passes a mask on (all
        of them; MultiHeadAttention: the query's)."""
        return inputs

    # -- shapes and sizes ---------------------------------------------------------
    def output_shape(self, input_shape: Shape) -> Shape:
        """The output shape for ``input_shape``; raises ShapeError with the numbers put in the formula."""
        raise NotImplementedError

    def init_params(self, input_shape: Shape, rng: np.random.Generator) -> Params:
        return {}

    def count_params(self, input_shape: Shape) -> int:
        shapes = self.param_shapes(input_shape)
        return int(sum(np.prod(s, dtype=np.int64) for s in shapes.values()))

    def param_shapes(self, input_shape: Shape) -> dict[str, Shape]:
        """Shapes of the parameters, without allocating them."""
        return {}

    def flops(self, input_shape: Shape) -> int:
        """Forward FLOPs per example, counting a multiply-add as 2 (biases and activations not counted)."""
        return 0

    # -- math --------------------------------------------------------------------
    def forward(
        self,
        params: Params,
        x: np.ndarray,
        training: bool = False,
        rng: np.random.Generator | None = None,
        activation: ActivationFunction | None = None,
    ) -> tuple[np.ndarray, Any]:
        """``(y, cache)``: the output and whatever backward needs; every kind takes the same arguments, and a
        kind whose ``masking`` is ``"take"`` the keyword ``mask`` besides (boolean ``(N, steps)``, true at the
        steps that count; a list, one per input, None for one without, for a merge), given only when a mask
        reaches it; its ``to_onnx`` takes the keyword ``mask`` likewise (float tensors, 1 where a step counts).

        ``activation`` is only given to a kind that ``fuses_activation``, which applies it to ``y``.
        """
        raise NotImplementedError

    def new_state(self, cache: Any) -> Params:
        """The new values of the ``non_trainable`` parameters after the training forward that made ``cache``
        (forward never changes ``params``; the training step applies these); ``{}`` for kinds without state."""
        return {}

    def backward(
        self, params: Params, cache: Any, dy: np.ndarray, need_dx: bool = True
    ) -> tuple[np.ndarray | None, Params]:
        """``(dx, grads)`` given the output gradient; ``dx`` is None when ``need_dx`` is False."""
        raise NotImplementedError

    # -- export -------------------------------------------------------------------
    def to_onnx(self, builder, params: Params, input_name: str) -> str:
        """Emit this layer's ONNX nodes through ``builder``; return the output tensor's name. The node
        making the output is hinted with the layer's name, so that the exporter can name a graph output
        when that node is made (``OnnxBuilder.claim``)."""
        raise NotImplementedError

    def to_torch(self, node, params: Params):
        """This layer as a ``torch.nn.Module`` on channels-first tensors, built from its graph node and its
        parameters in specforge's layout (a module of specforge.layers.torch.modules, imported here, not at
        the top: PyTorch is the ``torch`` extra). The PyTorch backend lowers the graph with it."""
        raise NotImplementedError(f"the {self.type} layer has no PyTorch lowering")


#: The numpy dtype of a batch for each ``Layer.input_dtype``.
INPUT_DTYPES = {"float": "float32", "int": "int64"}

#: A layer name: no '/', which separates the names of a block's layers from the block's.
LAYER_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_.-]*$"


def shape_error(message: str) -> ShapeError:
    """A ShapeError without a position; the graph adds the file, line and layer path."""
    return ShapeError(message)


def kernel_and_bias(dkernel: np.ndarray, dbias: np.ndarray | None) -> Params:
    """The gradients an ops call returned for a layer's ``kernel`` and (when it has one) ``bias``."""
    return {"kernel": dkernel} if dbias is None else {"kernel": dkernel, "bias": dbias}


def as_pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """Keras' ``int or (int, int)`` option as a pair."""
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def int_or_pair(description: str, default: Any = None, minimum: int = 1) -> dict:
    """Schema of an option that is an int or a pair of ints (height, width)."""
    schema: dict = {
        "description": description,
        "oneOf": [
            {"type": "integer", "minimum": minimum},
            {"type": "array", "items": {"type": "integer", "minimum": minimum}, "minItems": 2, "maxItems": 2},
        ],
    }
    if default is not None:
        schema["default"] = default
    return schema


PADDING_SCHEMA = {
    "description": "valid: no padding, the output shrinks by the kernel; same: zero-pad so that "
    "output = ceil(input / stride) (TensorFlow's rule: the extra pixel goes after).",
    "enum": ["valid", "same"],
    "default": "valid",
}

#: Activation names the spec accepts: those of the activation registry.
ACTIVATION_NAMES = ACTIVATIONS.names()
#: Initializer names the spec accepts: those of the initializer registry.
INITIALIZER_NAMES = INITIALIZERS.names()


def activation_schema(default: str = "linear") -> dict:
    return {
        "description": "Activation applied to the output. softmax as the last layer's activation is fused "
        "with cross-entropy losses (computed on logits, stable for raw 0-255 inputs).",
        "enum": list(ACTIVATION_NAMES),
        "default": default,
    }


def initializer_schema(default: str, what: str) -> dict:
    return {"description": f"Initializer of the {what}.", "enum": list(INITIALIZER_NAMES), "default": default}
