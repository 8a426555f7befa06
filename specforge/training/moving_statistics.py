"""Whether a batch-normalized model trained long enough for its moving statistics to move.

BatchNormalization's moving mean and variance start at 0 and 1, and each training step keeps
``momentum`` of them: after ``steps`` steps the initial values still weigh ``momentum ** steps``.
Inference uses the moving statistics, so a short run (32 steps at the default momentum 0.99 keep
72% of the initial values) scores near chance however well its training batches did.  A run
whose initial values still weigh more than ``UNSETTLED_SHARE`` gets one warning line, with the
steps it would need and a momentum that would do in the steps it took.
"""

from __future__ import annotations

import math

from specforge.base.errors import Problem
from specforge.graph.dag import Graph
from specforge.layers.normalization import BatchNormalization
from specforge.spec import Spec

#: The weight of the initial values above which the moving statistics count as not yet moved.
UNSETTLED_SHARE = 0.05


def steps_needed(momentum: float) -> int | None:
    """Training steps after which the initial values weigh at most UNSETTLED_SHARE; None for momentum 1."""
    if momentum >= 1:
        return None
    if momentum <= 0:
        return 1
    return math.ceil(math.log(UNSETTLED_SHARE) / math.log(momentum))


def settling_momentum(steps: int) -> float:
    """The largest momentum (two decimals) that leaves at most UNSETTLED_SHARE of the initial values after
    ``steps`` steps."""
    return math.floor(100 * UNSETTLED_SHARE ** (1 / max(steps, 1))) / 100


def unsettled_statistics(spec: Spec, graph: Graph, steps: int) -> Problem | None:
    """A warning located at the BatchNormalization layer whose moving statistics moved least in ``steps``
    training steps, when its initial values still weigh more than UNSETTLED_SHARE; None otherwise."""
    unsettled = [
        node
        for node in graph.nodes
        if isinstance(node.layer, BatchNormalization) and node.layer.config["momentum"] ** steps > UNSETTLED_SHARE
    ]
    if not unsettled:
        return None
    node = max(unsettled, key=lambda candidate: candidate.layer.config["momentum"])
    momentum = node.layer.config["momentum"]
    needed = steps_needed(momentum)
    others = f" (and {len(unsettled) - 1} more BatchNormalization layers)" if len(unsettled) > 1 else ""
    longer = (
        f"train for at least {needed:,} steps (more epochs, more data or a smaller batch_size) or "
        if needed is not None
        else ""
    )
    return Problem(
        f"after {steps:,} training steps the moving mean and variance of {node.source!r}{others} still "
        f"hold {momentum**steps:.0%} of their initial values (momentum {momentum:g}) and inference uses "
        f"them, so its scores can be near chance; {longer}lower the momentum (momentum: "
        f"{settling_momentum(steps):g} would do in {steps:,} steps)",
        spec.locate(node.path),
        severity="warning",
    )
