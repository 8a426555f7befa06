"""How large the model's blocks expand, computed from the block call graph before anything is expanded.

A use of a block copies the block's layers ``repeat`` times, and a block may use other blocks: forty
blocks each using the one before twice are 2^40 layers in 120 lines, and ``repeat: 1000000000`` alone
would expand until memory runs out.  Each block's size (layers in one copy) and nesting depth are
multiplied and added up through the call graph, each block once and without recursion, and the use
that takes the model past MAX_LAYERS layers or MAX_DEPTH nested blocks is refused at its line.  A
block that uses itself counts as empty here (expanding it reports the cycle), but every copy of a use counts
as one layer at least, whatever its block: each copy is named before its block is looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from specforge.base.errors import Location, Problem
from specforge.spec.reader import SpecPath

#: Layers the model may have with every block expanded (the reference specs have a few hundred).
MAX_LAYERS = 10_000
#: How deep blocks may nest inside one another.
MAX_DEPTH = 32
#: Sizes are counted up to this and shown as "more than" it: enough for any message, and the numbers stay small.
_CEILING = 10**18


@dataclass(frozen=True)
class _Extent:
    """One copy of a block: its layers with every block in it expanded, and how deep blocks nest in it."""

    layers: int
    depth: int


def expansion_problems(data: Any, locate: Callable[[SpecPath], Location]) -> list[Problem]:
    """The uses that take the model (``data``, a spec document, not necessarily schema-valid) past
    MAX_DEPTH nested blocks or MAX_LAYERS layers, located by ``locate``."""
    model = data.get("model") if isinstance(data, dict) else None
    items = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(items, list):
        return []
    blocks = data.get("blocks")
    blocks = (
        {
            name: block
            for name, block in blocks.items()
            if isinstance(block, dict) and isinstance(block.get("layers"), list)
        }
        if isinstance(blocks, dict)
        else {}
    )
    extents = _extents(blocks)
    top = _extent(items, extents)
    problems = []
    if top.depth > MAX_DEPTH:
        problems.append(_depth_problem(items, blocks, extents, locate))
    if top.layers > MAX_LAYERS:
        problems.append(_layers_problem(items, blocks, extents, locate))
    return problems


def _uses(items: list) -> Iterator[tuple[int, dict, str, int]]:
    """``(index, item, block, repeat)`` for each item of ``items`` that uses a block."""
    for index, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("block"), str):
            repeat = item.get("repeat", 1)
            yield index, item, item["block"], repeat if isinstance(repeat, int) and repeat >= 1 else 1


def _extents(blocks: dict[str, dict]) -> dict[str, _Extent]:
    """Every block's extent, each computed once after the blocks it uses (an explicit stack, so that
    thousands of nested blocks need no recursion)."""
    extents: dict[str, _Extent] = {}
    for root in blocks:
        if root in extents:
            continue
        stack = [(root, _uses(blocks[root]["layers"]))]
        open_ = {root}
        while stack:
            name, pending = stack[-1]
            child = next(
                (
                    block
                    for _, _, block, _ in pending
                    if block in blocks and block not in extents and block not in open_
                ),
                None,
            )
            if child is not None:
                stack.append((child, _uses(blocks[child]["layers"])))
                open_.add(child)
                continue
            stack.pop()
            open_.discard(name)
            extents[name] = _extent(blocks[name]["layers"], extents)
    return extents


def _extent(items: list, extents: dict[str, _Extent]) -> _Extent:
    """The extent of ``items`` from the extents of the blocks they use (an unknown block or one not yet
    known, in a cycle, counts as empty)."""
    layers = sum(1 for item in items if not (isinstance(item, dict) and "block" in item))
    depth = 0
    for _, _, block, repeat in _uses(items):
        inner = _of(extents, block)
        layers = min(layers + repeat * max(inner.layers, 1), _CEILING)
        depth = max(depth, 1 + inner.depth)
    return _Extent(layers, depth)


def _of(extents: dict[str, _Extent], block: str) -> _Extent:
    return extents.get(block, _Extent(0, 0))


def _depth_problem(
    items: list, blocks: dict, extents: dict[str, _Extent], locate: Callable[[SpecPath], Location]
) -> Problem:
    """At the use that nests one block more than MAX_DEPTH deep, following the deepest uses down."""
    where: SpecPath = ("model", "layers")
    chain: list[str] = []
    while True:
        deep = [
            (index, block)
            for index, _, block, _ in _uses(items)
            if len(chain) + 1 + _of(extents, block).depth > MAX_DEPTH
        ]
        index, block = next((use for use in deep if use[1] not in chain), deep[0])
        chain.append(block)
        if len(chain) > MAX_DEPTH:
            return Problem(
                f"block {block!r} is nested {len(chain)} deep here ({_chain(chain)}); blocks nest at "
                f"most {MAX_DEPTH} deep: use fewer levels of blocks",
                locate((*where, index, "block")),
            )
        items, where = blocks[block]["layers"], ("blocks", block, "layers")


def _layers_problem(
    items: list, blocks: dict, extents: dict[str, _Extent], locate: Callable[[SpecPath], Location]
) -> Problem:
    """At the item that takes its scope past MAX_LAYERS: in the model, or inside the block that alone is too
    large (where that block is defined), following such blocks down (each once: a block inside itself counts
    one layer per copy, as it did when its size was counted)."""
    where: SpecPath = ("model", "layers")
    scope = "the model"
    chain: set[str] = set()
    problem: Problem | None = None
    while True:
        found = _first_past(items, extents, chain)
        if found is None:  # the block was counted larger where it is used than inside it: report that use
            assert problem is not None
            return problem
        index, use, size, total = found
        count = min(size * use[3], _CEILING) if use else 1
        what = (
            f"this use of block {use[2]!r} ({_count(use[3])} x {_count(size)} layers)"
            if use and use[3] > 1
            else f"this use of block {use[2]!r} ({_count(size)} layers)"
            if use
            else "this layer"
        )
        at = where + (index,) + (("repeat",) if use and use[3] > 1 and total + size <= MAX_LAYERS else ())
        problem = Problem(
            f"{what} takes {scope} to {_count(total + count)} layers, more than the {MAX_LAYERS:,} a "
            "model may have; use a smaller repeat, or fewer or smaller blocks",
            locate(at),
        )
        if not (use and size > MAX_LAYERS and use[2] not in chain):
            return problem
        items, where, scope = blocks[use[2]]["layers"], ("blocks", use[2], "layers"), f"block {use[2]!r}"
        chain.add(use[2])


def _first_past(items: list, extents: dict[str, _Extent], chain: set[str]) -> tuple[int, tuple | None, int, int] | None:
    """``(index, use, size, total before it)`` of the first of ``items`` that takes their count past
    MAX_LAYERS (``use`` as ``_uses`` gives it, None for a layer; ``size``: layers in one copy)."""
    total = 0
    for index, item in enumerate(items):
        use = next(_uses([item]), None)
        size = (1 if use[2] in chain else max(_of(extents, use[2]).layers, 1)) if use else 1
        count = min(size * use[3], _CEILING) if use else 1
        if total + count > MAX_LAYERS:
            return index, use, size, total
        total += count
    return None


def _count(number: int) -> str:
    return f"more than {_CEILING:,}" if number >= _CEILING else f"{number:,}"


def _chain(blocks: list[str], keep: int = 3) -> str:
    """``'a' > 'b' > ... > 'z'``: the first and last ``keep`` names of a long chain."""
    names = [repr(name) for name in blocks]
    if len(names) > 2 * keep + 1:
        names = [*names[:keep], f"... {len(names) - 2 * keep} more", *names[-keep:]]
    return "model > " + " > ".join(names)
