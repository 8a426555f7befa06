"""A spec's PyTorch lowering exported by torch.onnx, as a PyTorch user would deploy the same model."""

from __future__ import annotations

import io
import warnings

import torch

from specforge.layers.torch.layout import torch_shape
from specforge.training.torch.network import TorchNetwork


def torch_onnx(twin: TorchNetwork, opset: int = 13) -> bytes:
    """The network in inference mode through torch.onnx's TorchScript exporter: input ``input`` in the network's
    (channels-first) layout with a symbolic batch axis, output ``probabilities``."""
    twin.eval()
    ids = twin.graph.input_dtype.startswith("int")  # a model of token ids (Embedding) takes int64
    example = torch.zeros(1, *torch_shape(twin.graph.input_shape), dtype=torch.int64 if ids else torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated in favour of torch.export's
        torch.onnx.export(
            twin,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["probabilities"],
            dynamic_axes={"input": {0: "N"}, "probabilities": {0: "N"}},
        )
    return buffer.getvalue()
