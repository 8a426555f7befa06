"""Names of the two image tensor layouts, shared by the layers and the exporter.

Tensors in specforge are NHWC (batch, height, width, channels), as in the spec; ONNX's
convolutions and pooling take NCHW. A layer's ONNX conversion asks for one or the other.
"""

from __future__ import annotations

NHWC = "NHWC"
NCHW = "NCHW"
