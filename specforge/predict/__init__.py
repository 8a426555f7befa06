"""Predictions from a trained model: the onnxruntime session, images and arrays, table rows, a run directory,
Ray Data."""
