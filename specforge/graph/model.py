"""A graph with its parameters: batched forward, inference, one training step, weights on disk.

Parameters are a list with one ``{name: array}`` dict per graph node.  Trainable
parameters (every one not in a layer's ``non_trainable``) are handed to the
optimizer as one flat list in a fixed order (node order, then the layer's
parameter order), so optimizer state saved by one process fits another.  They are
kept as consecutive views of one flat buffer (specforge.ops.flat), so that the
optimizer updates them all at once; everything writes them in place.
"""

from __future__ import annotations

import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from specforge.base.errors import RunError
from specforge.base.fileio import atomic_open
from specforge.graph.dag import Graph, input_node, input_position
from specforge.graph.plan import Step, plan_steps
from specforge.layers.base import Params
from specforge.ops import flat, parallel
from specforge.options.losses import Loss
from specforge.options.optimizers import Optimizer


class Model:
    """``graph`` evaluated with ``params`` (one dict per node, updated in place by training)."""

    def __init__(self, graph: Graph, params: list[Params]):
        if len(params) != len(graph.nodes):
            raise ValueError(f"{len(params)} parameter dicts for a graph of {len(graph.nodes)} nodes")
        self.graph = graph
        self.params = params
        self._trainable = [
            (index, name)
            for index, node in enumerate(graph.nodes)
            for name in node.layer.param_shapes(node.input_shape)
            if name not in node.layer.non_trainable
        ]
        if self._trainable:
            packed = flat.pack([params[index][name] for index, name in self._trainable])
            for (index, name), view in zip(self._trainable, packed):
                params[index][name] = view
        self._plans: dict[int | frozenset[int] | None, list[Step]] = {}

    def __repr__(self) -> str:
        return f"Model({self.graph!r})"

    @classmethod
    def initialize(cls, graph: Graph, rng: np.random.Generator) -> Model:
        """Fresh parameters drawn from ``rng`` (the spec's initializers)."""
        return cls(graph, graph.init_params(rng))

    @property
    def node_names(self) -> list[str]:
        return [node.layer.name for node in self.graph.nodes]

    # -- inference ---------------------------------------------------------------------------
    def outputs(
        self,
        xs: Batch,
        training: bool = False,
        rng: np.random.Generator | None = None,
        skipped: frozenset[int] = frozenset(),
    ) -> list[np.ndarray]:
        """Each model output for a batch ``xs`` (one array per model input, or the array of the only one);
        an output whose node is in ``skipped`` (see ``skipped``) gives its activation's input, the logits."""
        steps = self.steps(skipped)
        wanted = self.output_values(skipped)
        values = self._forward(steps, StepValues(steps, xs, wanted, self.graph), training, rng)
        return [values.get(index) for index in wanted]

    def output_values(self, skipped: frozenset[int]) -> list[int]:
        """The node whose value each model output takes: its own, or its input's when it is ``skipped``."""
        nodes = self.graph.nodes
        return [nodes[index].inputs[0] if index in skipped else index for index in self.graph.output_nodes]

    def forward(
        self, x: Batch, training: bool = False, rng: np.random.Generator | None = None, until: int | None = None
    ) -> np.ndarray:
        """The output of the first ``until`` nodes (all by default) for a batch ``x`` of shape ``(N, *input)``
        (a list, one array per input, for a model of several)."""
        if until is None:
            return self.outputs(x, training, rng)[0]
        steps = self.steps(until)
        return self._forward(steps, StepValues(steps, x, graph=self.graph), training, rng).last

    def _forward(
        self, steps: list[Step], values: StepValues, training: bool, rng: np.random.Generator | None
    ) -> StepValues:
        """``values`` with each of ``steps`` computed in turn, BLAS at one thread (see ``gradients``)."""
        with parallel.single_threaded_blas():
            for step in steps:
                y, _ = step.forward(self.params[step.index], values.take(step), training, rng, values.mask(step))
                values.put(step, y)
        return values

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The model's outputs (probabilities for a softmax classifier) for ``x``, in batches, inference mode."""
        if len(x) == 0:
            return np.zeros((0, *self.graph.output_shape), dtype=np.float32)
        first = self.forward(x[:batch_size])
        out = np.empty((len(x), *first.shape[1:]), dtype=first.dtype)
        out[: len(first)] = first
        for start in range(batch_size, len(x), batch_size):
            out[start : start + batch_size] = self.forward(x[start : start + batch_size])
        return out

    # -- training ------------------------------------------------------------------------------
    def fuses(self, loss: Loss) -> bool:
        """Whether the (first) output is the activation ``loss`` takes the logits of (softmax for cross-entropy)."""
        return bool(self.skipped([loss]))

    def skipped(self, losses: Sequence[Loss]) -> frozenset[int]:
        """The output nodes training and evaluation skip (``fused_outputs``)."""
        return fused_outputs(self.graph, losses)

    def gradients(
        self,
        x: Batch,
        y: Batch,
        loss: Loss | Sequence[Loss],
        rng: np.random.Generator | None = None,
        loss_weights: Sequence[float] | None = None,
    ) -> tuple[Any, Batch, list[np.ndarray], list[tuple[int, Params]]]:
        """``(loss value, outputs, gradients of the trainable parameters, state)`` for one batch, training
        mode; ``state`` is ``(node index, new non-trainable values)`` per node that has any (the moving
        statistics), for ``apply_state``: the parameters themselves are left unchanged.

        A model of several outputs takes one target, one loss and one weight per output (lists) and gives one
        loss value and one output array per output; the gradients are those of the weighted sum of the losses
        (Keras' loss_weights).
        With a fused loss the output's activation is skipped and the loss works on the logits;
        ``outputs`` are then the activation of the logits, so they are always what
        ``forward`` would return (probabilities for metrics).

        BLAS runs at one thread throughout (the ops split batches across the cores themselves): a product
        outside the shards (batch normalization's channel sums) woke BLAS's other threads, which went on
        spinning for a core while the next layer's shards wanted it (the residual network's step at batch 32 on
        two cores: 5-8% faster with them held).
        """
        with parallel.single_threaded_blas():
            return self._gradients(x, y, loss, rng, loss_weights)

    def _gradients(
        self,
        x: Batch,
        y: Batch,
        loss: Loss | Sequence[Loss],
        rng: np.random.Generator | None,
        loss_weights: Sequence[float] | None,
    ) -> tuple[Any, Batch, list[np.ndarray], list[tuple[int, Params]]]:
        several = not isinstance(loss, Loss)
        loss_list: list[Loss] = list(loss) if not isinstance(loss, Loss) else [loss]
        targets: list[np.ndarray] = list(y) if isinstance(y, list) else [y]
        weights = list(loss_weights) if loss_weights is not None else [1.0] * len(loss_list)
        skipped = self.skipped(loss_list)
        steps = self.steps(skipped)
        wanted = self.output_values(skipped)
        values = StepValues(steps, x, wanted, self.graph)
        caches, state = [], []
        for step in steps:
            out, cache = step.forward(self.params[step.index], values.take(step), True, rng, values.mask(step))
            values.put(step, out)
            caches.append(cache)
            new_state = step.new_state(cache)
            if new_state:
                state.append((step.index, new_state))
        losses, outputs = [], []
        upstream: dict[int, np.ndarray] = {}
        for output, index, each, target, weight in zip(
            self.graph.output_nodes, wanted, loss_list, targets, weights, strict=True
        ):
            fused = output in skipped
            out = values.get(index)
            each_value, dy = each.value_and_grad(out, target, from_logits=fused)
            losses.append(each_value)
            upstream[index] = (
                upstream[index] + weight * dy if index in upstream else (dy if weight == 1 else weight * dy)
            )
            outputs.append(each.to_probabilities(out, fused))
        grads: list[Params] = [{} for _ in self.params]
        for position in range(len(steps) - 1, -1, -1):
            step = steps[position]
            dx, grads[step.index] = step.backward(
                self.params[step.index], caches[position], upstream.pop(step.output), need_dx=step.needs_dx
            )
            caches[position] = None
            if step.needs_dx:
                assert dx is not None, "backward gives dx when need_dx is True"
                gather_gradients(upstream, step, dx)
        trainable = [grads[index][name] for index, name in self._trainable]
        return (losses, outputs, trainable, state) if several else (losses[0], outputs[0], trainable, state)

    def steps(self, until: int | frozenset[int] | None = None) -> list[Step]:
        """The first ``until`` nodes (in topological order), or all but the ``skipped`` output activations when
        given a set, as the steps that compute them: a layer and the activation node that alone takes its output
        run as one step when the layer can apply it to its own output (specforge.graph.plan)."""
        if until not in self._plans:
            nodes = self.graph.nodes[: None if isinstance(until, frozenset) else until]
            skipped = until if isinstance(until, frozenset) else frozenset()
            planned = plan_steps([node.layer for node in nodes], [node.inputs for node in nodes], skipped)
            self._plans[until] = [step for step in planned if step.index not in skipped]
        return self._plans[until]

    def train_step(
        self,
        x: Batch,
        y: Batch,
        loss: Loss | Sequence[Loss],
        optimizer: Optimizer,
        rng: np.random.Generator | None = None,
        loss_weights: Sequence[float] | None = None,
    ) -> tuple[Any, Batch]:
        """One gradient step on a batch: ``(loss value, outputs)`` (see ``gradients``).

        When the loss is not finite the parameters (the moving statistics included) are left as they
        were, so the caller can stop with the last good weights.
        """
        value, outputs, grads, state = self.gradients(x, y, loss, rng, loss_weights)
        if np.all(np.isfinite(value)):
            optimizer.step(self.trainable_params(), grads)
            self.apply_state(state)
        return value, outputs

    def apply_state(self, state: list[tuple[int, Params]]) -> None:
        """Copy the new non-trainable values that ``gradients`` returned into the parameters."""
        for index, values in state:
            for name, value in values.items():
                np.copyto(self.params[index][name], value)

    def trainable_params(self) -> list[np.ndarray]:
        """The arrays the optimizer updates, in their fixed order."""
        return [self.params[index][name] for index, name in self._trainable]

    # -- weights ---------------------------------------------------------------------------------
    def get_weights(self) -> list[Params]:
        """Copies of every node's parameters."""
        return [{name: value.copy() for name, value in params.items()} for params in self.params]

    def set_weights(self, weights: list[Params]) -> None:
        """Copy ``weights`` (as ``get_weights`` returns) into the parameters in place; shapes must match."""
        if len(weights) != len(self.params):
            raise RunError(f"{len(weights)} weight sets for a model of {len(self.params)} nodes")
        for node, params, new in zip(self.graph.nodes, self.params, weights):
            if set(new) != set(params):
                raise RunError(
                    f"layer {node.layer.name} has parameters {sorted(params)}, the weights give {sorted(new)}"
                )
            for name, value in new.items():
                if value.shape != params[name].shape:
                    raise RunError(
                        f"{node.layer.name}/{name} has shape {params[name].shape}, the weights give "
                        f"{value.shape}; the weights belong to another model"
                    )
                np.copyto(params[name], value)

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """The parameters keyed ``"{node name}/{param}"``: the layout of weights files."""
        return {
            weight_key(name, key): value
            for name, params in zip(self.node_names, self.params)
            for key, value in params.items()
        }

    def save_weights(self, path: str | Path) -> Path:
        """Write the parameters to ``path`` (.npz, keys ``"{node name}/{param}"``), atomically."""
        write_npz(path, self.weight_arrays())
        return Path(path)

    def load_weights(self, path: str | Path) -> None:
        """Read parameters written by ``save_weights`` into this model."""
        self.set_weights(params_from_arrays(self.graph, read_npz(path), str(path)))


def fused_outputs(graph: Graph, losses: Sequence[Loss]) -> frozenset[int]:
    """The output nodes, one loss per model output, that are the activation their loss takes the logits of
    (softmax for cross-entropy) and that no other node takes: training and evaluation skip them, and the
    loss works on the logits (on every backend)."""
    taken = {index for node in graph.nodes for index in node.inputs}
    return frozenset(
        index
        for index, loss in zip(graph.output_nodes, losses, strict=True)
        if loss.fused_activation is not None
        and graph.activation_of(index) == loss.fused_activation
        and index not in taken
    )


#: a batch of a model's inputs, targets or outputs: one array, or a list of one per input or output
Batch = np.ndarray | list[np.ndarray]


class StepValues:
    """The outputs a run of ``steps`` has made and not yet handed to every step that takes them: each is
    dropped when its last user has it (those of nodes in ``kept`` aside: the model's outputs), so that a chain
    holds one activation at a time, as a loop would.  ``xs`` is the batch of each model input (or of the only
    one). With the ``graph`` they run, they also make the masks of the steps that take them (``mask``)."""

    def __init__(self, steps: list[Step], xs: Batch, kept: Sequence[int] = (), graph: Graph | None = None):
        self._users = Counter(index for step in steps for index in step.inputs)
        inputs = xs if isinstance(xs, list) else [xs]
        self._values: dict[int, np.ndarray] = {input_node(position): x for position, x in enumerate(inputs)}
        self._kept = set(kept)
        self.last = inputs[0]
        self._inputs = inputs
        self._graph = graph
        self._masks: dict[tuple[int, ...], np.ndarray] = {}

    def mask(self, step: Step) -> np.ndarray | list[np.ndarray | None] | None:
        """The mask the step's layer takes (``Layer.masking``; a list, one per input, for a merge), None when
        it takes none or none reaches it."""
        taken = None if self._graph is None else self._graph.taken_masks(step.index)
        if taken is None:
            return None
        masks = [self._mask_of(sources) if sources else None for sources in taken]
        return masks if step.layer.merges else masks[0]

    def _mask_of(self, sources: tuple[int, ...]) -> np.ndarray:
        """The steps that count where the ids of every model input in ``sources`` are not 0, made once."""
        if sources not in self._masks:
            self._masks[sources] = np.logical_and.reduce([self._inputs[input_position(s)] != 0 for s in sources])
        return self._masks[sources]

    def take(self, step: Step) -> np.ndarray | list[np.ndarray]:
        """The step's input (a list for a merge), released where this step is its last user."""
        taken = [self._values[index] for index in step.inputs]
        for index in step.inputs:
            self._users[index] -= 1
            if not self._users[index] and index not in self._kept:
                del self._values[index]
        return taken if step.layer.merges else taken[0]

    def put(self, step: Step, y: np.ndarray) -> None:
        self._values[step.output] = self.last = y

    def get(self, index: int) -> np.ndarray:
        """The value of node ``index`` (one of ``kept``, or a model input)."""
        return self._values[index]


def gather_gradients(upstream: dict[int, np.ndarray], step: Step, dx: np.ndarray | list[np.ndarray]) -> None:
    """Add a step's input gradients to what the steps after it gave the same nodes.

    Steps run backward in a fixed order, so a fan-out's gradients are always summed in that order
    (bit-identical reruns); the sum is a new array because a gradient may be another one's view.
    """
    for index, gradient in zip(step.inputs, dx if step.layer.merges else [dx]):
        if index < 0:  # a model input
            continue
        upstream[index] = upstream[index] + gradient if index in upstream else gradient


def weight_key(node_name: str, param: str) -> str:
    """The key of one parameter in weights files."""
    return f"{node_name}/{param}"


def params_from_arrays(graph: Graph, arrays: dict[str, np.ndarray], source: str) -> list[Params]:
    """Per-node parameter dicts from arrays keyed as ``Model.weight_arrays``; RunError naming ``source``
    when the keys or shapes do not fit ``graph``."""
    shapes = {
        weight_key(node.layer.name, name): shape
        for node in graph.nodes
        for name, shape in node.layer.param_shapes(node.input_shape).items()
    }
    missing, extra = sorted(shapes.keys() - arrays.keys()), sorted(arrays.keys() - shapes.keys())
    if missing or extra:
        detail = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"
        raise RunError(f"the weights do not fit this model ({detail}); they belong to another spec", file=source)
    for key, shape in shapes.items():
        if arrays[key].shape != tuple(shape):
            raise RunError(
                f"{key} has shape {arrays[key].shape}, the model needs {tuple(shape)}; the weights "
                "belong to another spec",
                file=source,
            )
    return [
        {
            name: np.asarray(arrays[weight_key(node.layer.name, name)])
            for name in node.layer.param_shapes(node.input_shape)
        }
        for node in graph.nodes
    ]


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz written atomically."""
    with atomic_open(path, "wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)  # read back without pickle (read_npz), so none written


def read_npz(path: str | Path, remedy: Callable[[], str] | None = None) -> dict[str, np.ndarray]:
    """Every array of an .npz file, loaded (no pickles); RunError when it is missing, cut short or damaged,
    ending with what would work instead: ``remedy()``, asked only then."""
    path = Path(path)
    if not path.is_file():
        raise RunError("the file does not exist", file=str(path))
    instead = remedy or (lambda: "give a weights file written by specforge")
    if not zipfile.is_zipfile(path):
        raise RunError(f"cut short or not an .npz archive (no zip directory at its end); {instead()}", file=str(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise RunError(f"a damaged .npz archive ({error}); {instead()}", file=str(path)) from None
