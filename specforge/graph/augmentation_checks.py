"""Where augmentation layers may go: first, each taking the model's input or another augmentation layer's
output, so that they change the images before any layer that gives them another meaning (a convolution's
features flipped or brightened are no longer what the next layer learned)."""

from __future__ import annotations

from specforge.base.errors import Problem
from specforge.graph.dag import Graph
from specforge.spec import Spec


def augmentation_problems(spec: Spec, graph: Graph) -> list[Problem]:
    """One problem per augmentation layer placed after a layer that is not one."""
    augmenting = {index for index, node in enumerate(graph.nodes) if getattr(node.layer, "augments", False)}
    problems = []
    for index in sorted(augmenting):
        node = graph.nodes[index]
        before = [graph.nodes[source] for source in node.inputs if source >= 0 and source not in augmenting]
        if before:
            problems.append(
                Problem(
                    f"{node.layer.type} comes after layer {before[0].source}, which changes what "
                    "the image means; augmentation layers go first, before the first layer that is not one (each takes "
                    "the model's input or another augmentation layer's output)",
                    spec.locate(node.path),
                )
            )
    return problems
