"""Export of a built graph and its trained weights to ONNX.

Kept free of heavy imports: ``specforge.export.onnx`` imports onnx when it is used.
"""
