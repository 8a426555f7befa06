"""model.layers and blocks -> one flat list of layers, each with its full name and the names of its inputs.

A layer may have a ``name`` (default: its kind in snake case with a counter, as Keras names layers)
and ``inputs`` (one name or a list; default: the layer before it; the model's input is ``input``).
A ``- block: NAME`` item is a use of a block defined under ``blocks:``: the block's layers, with
the arguments put in for its ``$parameters``, as many times as ``repeat`` says, each copy taking
the one before it as input.  Layers inside a block get hierarchical names
(``stage2/residual_1/conv_a``); inside a block, ``input`` is the block's input and names refer to
the block's own layers.

Everything after ``spec/`` sees the flat list and never the spec's structure.  Every mistake (a
duplicate name, an input that names nothing, a block argument missing, unknown or of the wrong type)
is collected and reported at once; one inside a block is reported where the block is used, naming
the line of the block's definition.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft7Validator

from specforge.base.defaults import with_defaults
from specforge.base.errors import Problem, capped
from specforge.spec.reader import SpecPath, format_path
from specforge.spec.schema import load_schema
from specforge.spec.validate import error_messages, type_message

#: the name of the model's (or inside a block, the block's) input, as a layer's ``inputs`` refers to it
INPUT = "input"
#: the key that marks a layer or block the schema refused (in a spec whose other parts are still checked)
FAILED = "$failed"
#: what an input that names no layer is resolved to: a layer that failed
_UNKNOWN = "<unknown>"
#: keys of a block use that are not arguments of the block
_USE_KEYS = ("block", "name", "inputs", "repeat")
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Context:
    """Where a layer is written: ``path`` at the top level, or inside blocks used at ``path`` (a
    ``model.layers`` item), ``trail`` giving each block's name and the use or layer inside it."""

    path: SpecPath
    trail: tuple[tuple[str, SpecPath], ...] = ()

    def problem(
        self,
        spec,
        message: str,
        inner: SpecPath | None = None,
        *,
        severity: str = "error",
        at_key: bool = False,
        same_as: str = "",
    ) -> Problem:
        """``message`` located at ``inner`` (a path in the spec) at the top level; inside a block, at the
        use of the outermost block, naming the blocks and the line of ``inner`` in their definition."""
        if not self.trail:
            return Problem(message, spec.locate(inner or self.path, at_key=at_key), severity)
        where = inner or self.trail[-1][1]
        line = spec.locate(where, at_key=at_key).line
        at = f" at line {line}" if line is not None else ""
        blocks = " > ".join(repr(name) for name, _ in self.trail)
        inside = f"in block {blocks}{at} ({format_path(where)})"
        return InBlock(
            f"{inside}: {message}",
            spec.locate(self.path),
            severity,
            inside=inside,
            reason=message,
            uses=(self.path,),
            same_as=same_as,
        )

    @property
    def item(self) -> SpecPath:
        """The path of the item itself: in model.layers, or in its block's definition."""
        return self.trail[-1][1] if self.trail else self.path

    def inside(self, block: str, path: SpecPath) -> Context:
        return Context(self.path, (*self.trail, (block, path)))

    def at(self, path: SpecPath) -> Context:
        """The context of the item at ``path`` in the current scope."""
        if not self.trail:
            return Context(path)
        return Context(self.path, (*self.trail[:-1], (self.trail[-1][0], path)))


@dataclass
class InBlock(Problem):
    """A problem inside a block, at the use of the outermost block: ``inside`` says where in the definitions,
    ``uses`` are the ``model.layers`` items that use it (one, until ``merge_uses`` joins the same problem
    found in every use); ``same_as`` names the problem when other places find it too (a cycle of blocks,
    found from whichever of its blocks the model uses)."""

    inside: str = ""
    reason: str = ""
    uses: tuple[SpecPath, ...] = ()
    same_as: str = ""


def merge_uses(problems: list[Problem], spec) -> list[Problem]:
    """``problems`` with each problem inside a block reported once, at its first use, naming every use: a
    block used twice (or repeated) would otherwise repeat the same line for each copy."""
    merged: dict[tuple[str, str, str], InBlock] = {}
    result: list[Problem] = []
    for problem in problems:
        if not isinstance(problem, InBlock):
            result.append(problem)
            continue
        key = (
            (problem.same_as, "", problem.severity)
            if problem.same_as
            else (problem.inside, problem.reason, problem.severity)
        )
        first = merged.get(key)
        if first is None:
            merged[key] = problem
            result.append(problem)
        elif problem.uses[0] not in first.uses:
            first.uses += problem.uses
            first.message = capped(f"{first.inside}, used by {_uses(first.uses, spec)}: {first.reason}")
    return result


def _uses(uses: tuple[SpecPath, ...], spec) -> str:
    """``model.layers[1] (line 17) and model.layers[2] (line 18)``."""
    named = []
    for use in uses:
        line = spec.locate(use).line
        named.append(f"{format_path(use)}" + (f" (line {line})" if line is not None else ""))
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


@dataclass(frozen=True)
class FlatLayer:
    """One layer of the model: its full name, its config (``type`` and options), the full names of its
    inputs, and where the spec writes it."""

    name: str
    config: dict
    inputs: tuple[str, ...]
    context: Context

    @property
    def type(self) -> str:
        return self.config["type"]

    @property
    def path(self) -> SpecPath:
        """The top-level ``model.layers`` item it comes from."""
        return self.context.path

    @property
    def blocks(self) -> tuple[str, ...]:
        """The blocks it sits in, outermost first (their names under ``blocks:``)."""
        return tuple(name for name, _ in self.context.trail)


@dataclass(frozen=True)
class FlatModel:
    layers: list[FlatLayer]
    #: the full name of the layer whose output is the model's (first) output
    output: str
    #: every mistake found, each inside a block once per place in its definition
    problems: list[Problem] = field(default_factory=list)
    #: full names that layers may take as inputs but that are not layers: those that failed (refused by the
    #: schema, a block use with a mistake, an input naming nothing); what takes them is not checked further
    failed: frozenset[str] = frozenset()
    #: the full names of the layers whose outputs are the model's outputs, in ``model.outputs`` order
    outputs: tuple[str, ...] = ()
    #: the names of the model's inputs (``input`` alone unless ``model.inputs`` names them)
    sources: tuple[str, ...] = (INPUT,)


def snake(kind: str) -> str:
    """Keras' snake case of a class name: Conv2DTranspose -> conv2d_transpose, ReLU -> re_lu."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", kind)).lower()


def flatten_model(spec) -> FlatModel:
    """The layers of ``spec``'s model, blocks expanded, every name and input resolved, with every mistake
    found (what a mistake leaves undefined is among the model's ``failed`` names, so that the rest of the
    model is still checked)."""
    model = spec.config["model"]
    sources = tuple(model.get("inputs", {})) or (INPUT,)
    expander = _Expander(spec, sources=sources)
    outputs = expander.scope(model["layers"], ("model", "layers"), "", sources[0], Context(()), None)
    last = outputs[list(outputs)[-1]]
    wanted = (
        {("model", "outputs", name, "layer"): item["layer"] for name, item in model["outputs"].items()}
        if "outputs" in model
        else {("model", "output"): model.get("output")}
    )
    chosen = []
    for path, name in wanted.items():
        if name is not None and name not in outputs:
            expander.problems.append(Problem(_unknown(name, list(outputs)), spec.locate(path)))
        chosen.append(outputs.get(name, last) if name else last)
    return FlatModel(
        expander.finish(),
        chosen[0],
        merge_uses(expander.problems, spec),
        frozenset(expander.failed),
        tuple(chosen),
        sources,
    )


@dataclass
class _Pending:
    """A layer whose inputs may still name layers later in its scope (resolved when the scope ends)."""

    name: str
    config: dict
    inputs: list[Any]
    context: Context


@dataclass(frozen=True)
class _Ref:
    """A name in scope ``scope`` (an id), to be replaced by the full name of what it names."""

    scope: int
    name: str
    context: Context
    path: SpecPath


@dataclass
class _Expander:
    spec: Any
    #: the model's input names, which layers of the top level take by name
    sources: tuple[str, ...] = (INPUT,)
    problems: list[Problem] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    scopes: int = 0
    active: tuple[str, ...] = ()
    #: the uses being expanded, innermost last: where each writes its arguments, and the parameters it gives
    uses: list[tuple[Context, SpecPath, str, frozenset[str]]] = field(default_factory=list)
    #: paths in block definitions that held a ``$parameter`` -> its name
    substituted: dict[SpecPath, str] = field(default_factory=dict)
    #: (use or default, parameter) pairs whose argument or default was already reported
    reported: set[tuple[SpecPath, str]] = field(default_factory=set)
    #: (block, parameter) pairs whose default does not fit the parameter's own rule
    bad_defaults: set[tuple[str, str]] = field(default_factory=set)
    #: full names of what failed (see FlatModel.failed)
    failed: set[str] = field(default_factory=lambda: {_UNKNOWN})

    def __post_init__(self):
        schema = load_schema()
        self.blocks: dict = self.spec.config.get("blocks", {})
        self.layer_schema = {
            "definitions": schema["definitions"],
            **schema["properties"]["model"]["properties"]["layers"]["items"]["else"],
        }
        self.layer_validator = Draft7Validator(self.layer_schema)
        self._check_defaults()

    def _check_defaults(self) -> None:
        """Each parameter's default against the parameter's own rule, reported at the default (once, whether
        the block is used or not)."""
        for block_name, block in self.blocks.items():
            for name, param in block.get("params", {}).items():
                error = "default" in param and _rule_error(param, param["default"])
                if error:
                    self.bad_defaults.add((block_name, name))
                    self.problems.append(
                        Problem(
                            f"the default of parameter {name!r} of block {block_name!r}: {error}",
                            self.spec.locate(_default_path(block_name, name)),
                        )
                    )

    def finish(self) -> list[FlatLayer]:
        return [FlatLayer(p.name, p.config, tuple(p.inputs), p.context) for p in self.pending]

    def scope(
        self, items: list[dict], where: SpecPath, prefix: str, scope_input: Any, context: Context, args: dict | None
    ) -> dict[str, str]:
        """Expand ``items`` (written at ``where``) into layers named ``prefix + name``; the first takes
        ``scope_input``.  Returns each item's name -> the full name of its output, in order."""
        scope_id = self.scopes = self.scopes + 1
        paths = [(*where, index) for index in range(len(items))]
        if args is not None:
            items = [self._substituted(item, args, context.at(path), path) for item, path in zip(items, paths)]
        names = self._names(items, paths, context)
        outputs: dict[str, str] = {}
        first_pending = len(self.pending)
        previous: Any = scope_input
        for item, path, instances in zip(items, paths, names):
            here = context.at(path)
            given = item.get("inputs")
            wanted = (
                [previous]
                if given is None
                else [
                    _Ref(scope_id, name, here, path + ("inputs",) + ((position,) if isinstance(given, list) else ()))
                    for position, name in enumerate([given] if isinstance(given, str) else given)
                ]
            )
            if FAILED in item:
                made = [self._fail(prefix + instance) for instance in instances]
            elif item.get("name") in outputs:  # a second layer of that name, reported by _names
                made = [self._fail(f"<{format_path(path)}>")] * len(instances)
            elif "block" in item:
                made = self._use(item, path, prefix, instances, wanted, here)
            else:
                made = [self._layer(item, path, prefix + instances[0], wanted, here, args is not None)]
            outputs.update(zip(instances, made))
            previous = _Ref(scope_id, instances[-1], here, path)
        self._resolve(scope_id, outputs, scope_input, first_pending)
        return outputs

    def _fail(self, name: str) -> str:
        self.failed.add(name)
        return name

    def _resolve(self, scope_id: int, outputs: dict[str, str], scope_input: Any, first: int) -> None:
        """Replace the references to this scope's names by full names; an unknown name is a problem."""
        top = scope_id == 1
        named = top and self.sources != (INPUT,)
        known = [*(self.sources if named else [INPUT]), *outputs]
        for pending in self.pending[first:]:
            for position, ref in enumerate(pending.inputs):
                if not isinstance(ref, _Ref) or ref.scope != scope_id:
                    continue
                if named and ref.name in self.sources:
                    pending.inputs[position] = ref.name
                elif ref.name == INPUT and not named:
                    pending.inputs[position] = scope_input
                elif ref.name in outputs:
                    pending.inputs[position] = outputs[ref.name]
                else:
                    self.problems.append(ref.context.problem(self.spec, _unknown(ref.name, known), ref.path))
                    pending.inputs[position] = _UNKNOWN

    def _layer(self, item: dict, path: SpecPath, name: str, wanted: list, context: Context, in_block: bool) -> str:
        config = {key: value for key, value in item.items() if key not in ("name", "inputs")}
        if in_block:
            errors = [
                error
                for error in self.layer_validator.iter_errors(item)
                if not (isinstance(error.instance, str) and _PARAMETER.fullmatch(error.instance))
            ]
            if errors:
                for message, inner, at_key in error_messages(errors, self.layer_schema):
                    self._block_problem(context, message, path + inner, at_key)
                return self._fail(name)
            config = with_defaults(config, self.layer_schema)
        self.pending.append(_Pending(name, config, list(wanted), context))
        return name

    def _block_problem(self, context: Context, message: str, where: SpecPath, at_key: bool) -> None:
        """A problem with a layer inside a block: when a ``$parameter`` put the value there, at the argument of
        the use (once per argument) or at the parameter's default when the use left it out (once per default);
        else at the layer."""
        parameter = self.substituted.get(where)
        if parameter is None:
            self.problems.append(context.problem(self.spec, message, where, at_key=at_key))
            return
        use_context, use_path, block, given = self.uses[-1]
        source = use_path if parameter in given else _default_path(block, parameter)
        if (source, parameter) in self.reported:
            return
        self.reported.add((source, parameter))
        line = self.spec.locate(where).line
        fits = f"does not fit {format_path(where)}" + (f" (line {line})" if line is not None else "")
        if parameter in given:
            self.problems.append(
                use_context.problem(
                    self.spec, f"argument {parameter!r} of block {block!r} {fits}: {message}", (*use_path, parameter)
                )
            )
        else:
            self.problems.append(
                Problem(
                    f"the default of parameter {parameter!r} of block {block!r} {fits}: {message}",
                    self.spec.locate(source),
                )
            )

    def _use(
        self, item: dict, path: SpecPath, prefix: str, instances: list[str], wanted: list, context: Context
    ) -> list[str]:
        """Expand a use of a block, one copy per name in ``instances``; the full name of each copy's output."""
        block_name = item["block"]
        block = self.blocks.get(block_name, {FAILED: True})  # an unknown block is reported by _use_problem
        failed = [prefix + instance for instance in instances]
        problem = self._use_problem(block_name, wanted, path, context)
        if problem is not None:
            self.problems.append(problem)
        args = None if problem or FAILED in block else self._arguments(item, block_name, block, path, context)
        if args is None:
            return [self._fail(name) for name in failed]
        inner = context.inside(block_name, ("blocks", block_name))
        made, current = [], wanted[0]
        self.active += (block_name,)
        self.uses.append((context, path, block_name, frozenset(key for key in item if key not in _USE_KEYS)))
        for instance in instances:
            outputs = self.scope(
                block["layers"], ("blocks", block_name, "layers"), f"{prefix}{instance}/", current, inner, args
            )
            output = block.get("output", list(outputs)[-1])
            if output not in outputs:
                self.problems.append(
                    inner.problem(self.spec, _unknown(output, [INPUT, *outputs]), ("blocks", block_name, "output"))
                )
                made.append(self._fail(prefix + instance))
                break
            current = outputs[output]
            made.append(current)
        self.active = self.active[:-1]
        self.uses.pop()
        return made + [self._fail(name) for name in failed[len(made) :]]

    def _use_problem(self, block_name: str, wanted: list, path: SpecPath, context: Context) -> Problem | None:
        """What makes a use of ``block_name`` impossible: no such block, a block that uses itself, or several
        inputs."""
        if block_name not in self.blocks:
            return context.problem(self.spec, _unknown_block(block_name, list(self.blocks)), (*path, "block"))
        if block_name in self.active:
            chain = " -> ".join(repr(name) for name in (*self.active, block_name))
            cycle = sorted(self.active[self.active.index(block_name) :])
            return context.problem(
                self.spec,
                f"block {block_name!r} uses itself ({chain}); a block cannot contain itself",
                (*path, "block"),
                same_as=f"the cycle of blocks {cycle}",
            )
        if len(wanted) != 1:
            return context.problem(
                self.spec,
                f"a block takes one input, got {len(wanted)}; merge them first (Add, "
                "Concatenate, ...) or use the block on each",
                (*path, "inputs"),
            )
        return None

    def _arguments(self, item: dict, block_name: str, block: dict, path: SpecPath, context: Context) -> dict | None:
        """The block's parameters given values: the arguments of this use, then the defaults; None after
        reporting an argument that is missing, unknown or of the wrong type."""
        params: dict = block.get("params", {})
        given = {key: value for key, value in item.items() if key not in _USE_KEYS}
        found = len(self.problems)
        for key, value in given.items():
            if key not in params:
                guess = difflib.get_close_matches(key, list(params), n=1, cutoff=0.6)
                hint = (
                    f"did you mean {guess[0]!r}?"
                    if guess
                    else f"its parameters are: {', '.join(params)}"
                    if params
                    else "it takes no parameters"
                )
                self.problems.append(
                    context.problem(
                        self.spec, f"block {block_name!r} has no parameter {key!r}; {hint}", (*path, key), at_key=True
                    )
                )
                continue
            error = _rule_error(params[key], value)
            if error:
                self.problems.append(
                    context.problem(self.spec, f"argument {key!r} of block {block_name!r}: {error}", (*path, key))
                )
        missing = [name for name, param in params.items() if name not in given and "default" not in param]
        if missing:
            names = ", ".join(repr(name) for name in missing)
            self.problems.append(
                context.problem(
                    self.spec,
                    f"block {block_name!r} needs {names}; add {', '.join(f'{name}: ...' for name in missing)}",
                    path,
                )
            )
        if len(self.problems) > found or any(
            (block_name, name) in self.bad_defaults for name in params if name not in given
        ):
            return None
        return {name: copy.deepcopy(given.get(name, param.get("default"))) for name, param in params.items()}

    def _substituted(self, item: dict, args: dict, context: Context, path: SpecPath) -> dict:
        """A block's item with its arguments put in; marked failed when it names a parameter the block lacks."""
        found = len(self.problems)
        item = self._substitute(item, args, context, path)
        return {**item, FAILED: True} if len(self.problems) > found else item

    def _substitute(self, item: Any, args: dict, context: Context, path: SpecPath) -> Any:
        """``item`` with each ``$parameter`` string replaced by its argument; an unknown one is a problem."""
        if isinstance(item, dict):
            return {key: self._substitute(value, args, context, (*path, key)) for key, value in item.items()}
        if isinstance(item, list):
            return [self._substitute(value, args, context, (*path, index)) for index, value in enumerate(item)]
        match = _PARAMETER.fullmatch(item) if isinstance(item, str) else None
        if match is None:
            return item
        if match.group(1) not in args:
            block = context.trail[-1][0]
            guess = difflib.get_close_matches(match.group(1), list(args), n=1, cutoff=0.6)
            hint = (
                f"did you mean ${guess[0]}?"
                if guess
                else f"its parameters are: {', '.join(args)}"
                if args
                else "it has no params"
            )
            self.problems.append(
                context.problem(self.spec, f"block {block!r} has no parameter {match.group(1)!r}; {hint}", path)
            )
            return item
        self.substituted[path] = match.group(1)
        return args[match.group(1)]

    def _names(self, items: list[dict], paths: list[SpecPath], context: Context) -> list[list[str]]:
        """Each item's names: a layer's own, or Keras' ``kind``, ``kind_1``, ... skipping the names given;
        a block used ``repeat`` times gets one name per copy (the block's name with a counter)."""
        seen: dict[str, SpecPath] = {}
        for item, path in zip(items, paths):
            name = item.get("name")
            if name is None:
                continue
            if name == INPUT or name in self.sources:
                what = "the input" if name == INPUT else "a model input (model.inputs)"
                self.problems.append(
                    context.at(path).problem(
                        self.spec, f"{name!r} names {what}; give the layer another name", (*path, "name")
                    )
                )
            elif name in seen:
                self.problems.append(
                    context.at(path).problem(
                        self.spec,
                        f"the name {name!r} is already taken by {format_path(seen[name])}; layer names are unique",
                        (*path, "name"),
                    )
                )
            else:
                seen[name] = path
        counters: dict[str, int] = {}
        taken = set(seen)
        names = []
        for item in items:
            copies = item.get("repeat", 1) if "block" in item else 1
            if "name" in item:
                base = item["name"]
                names.append(
                    [base] + [f"{base}_{count}" for count in range(1, copies if isinstance(copies, int) else 1)]
                )
            else:
                base = item["block"] if "block" in item else snake(item["type"]) if "type" in item else "layer"
                names.append(
                    [_auto_name(base, counters, taken) for _ in range(copies if isinstance(copies, int) else 1)]
                )
        return names


def _rule_error(param: dict, value: Any) -> str:
    """What is wrong with ``value`` for a block parameter declared as ``param`` ("" when it fits)."""
    rule = {name: option for name, option in param.items() if name not in ("default", "description")}
    error = next(iter(Draft7Validator(rule).iter_errors(value)), None)
    return type_message(error) if error is not None else ""


def _default_path(block: str, parameter: str) -> SpecPath:
    return ("blocks", block, "params", parameter, "default")


def _auto_name(base: str, counters: dict[str, int], taken: set[str]) -> str:
    """Keras' naming: conv2d, conv2d_1, ... counting only the layers the user did not name."""
    while True:
        count = counters.get(base, 0)
        counters[base] = count + 1
        name = base if count == 0 else f"{base}_{count}"
        if name not in taken:
            return name


def _unknown(wanted: str, known: list[str]) -> str:
    """``no layer is named 'conv_x'; did you mean 'conv_a'?`` (or the names there are)."""
    guess = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]!r}?" if guess else f"the names are: {', '.join(known)}"
    return f"no layer is named {wanted!r}; {hint}"


def _unknown_block(wanted: str, known: list[str]) -> str:
    guess = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    hint = (
        f"did you mean {guess[0]!r}?"
        if guess
        else f"the blocks are: {', '.join(known)}"
        if known
        else "define it under blocks:"
    )
    return f"no block is named {wanted!r}; {hint}"
