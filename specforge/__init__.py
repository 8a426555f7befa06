"""specforge: declarative model specs -> validated graph -> trained weights -> ONNX -> predictions."""

__version__ = "0.1.0"
