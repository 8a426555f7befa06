"""Training a graph's weights: the model (forward, step, weight files), the loop, evaluation, progress and
TensorBoard."""
