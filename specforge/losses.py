"""Losses: the value and its gradient with respect to the network's outputs."""

from __future__ import annotations

LOSS_NAMES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
              "mean_squared_error", "mean_absolute_error")

LOSS_SCHEMA = {
    "description": "Loss minimised during training (Keras names). categorical_crossentropy: one-hot labels, "
                   "softmax output; sparse_categorical_crossentropy: integer labels, softmax output; "
                   "binary_crossentropy: 0/1 labels per output unit, sigmoid output; mean_squared_error and "
                   "mean_absolute_error: targets with the output's shape (integer labels are one-hot encoded). "
                   "Cross-entropy is computed on the logits of the last layer's softmax or sigmoid, so it "
                   "stays finite for any input scale.",
    "enum": list(LOSS_NAMES),
    "examples": ["categorical_crossentropy"],
}
