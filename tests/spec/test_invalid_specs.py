"""The invalid-spec corpus: every file under tests/spec/invalid/ is a mistake a user makes, and
validation must report it with exactly the expected lines ``FILE:LINE:COL: error: PATH: message``.

Files are validated from inside the corpus directory, so FILE is the bare name as the user typed it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from specforge import api
from specforge.base.errors import SpecforgeError
from specforge.data.sources import SOURCES
from specforge.graph.summary import summary_json
from specforge.layers import REGISTRY
from specforge.options.activations import ACTIVATIONS
from specforge.options.callbacks import CALLBACKS
from specforge.options.losses import LOSSES
from specforge.options.metrics import METRICS
from specforge.options.optimizers import OPTIMIZERS

CORPUS = Path(__file__).resolve().parent / "invalid"
REPO = CORPUS.parents[2]
SEED = REPO / "specs" / "mnist.yaml"

#: The names each registry holds, as the "expected one of" lists spell them.
_ACTIVATIONS = ", ".join(ACTIVATIONS)
_LOSSES = ", ".join(LOSSES)
_OPTIMIZERS = ", ".join(OPTIMIZERS)
_METRICS = ", ".join(METRICS)
_SOURCES = ", ".join(SOURCES)
_LAYERS = ", ".join(REGISTRY)
_CALLBACKS = ", ".join(CALLBACKS)
_SGD_KEYS = (
    "name, learning_rate, momentum, nesterov, clipnorm, clipvalue, use_ema, ema_momentum, ema_overwrite_frequency"
)
_TOP_KEYS = "$schema, version, name, description, data, model, compile, fit, sweep"
_INT_OR_PAIR = "expected an integer >= 1 or a list of 2 integers"
_EMPTY = "the spec is empty; start from `specforge init NAME`"
_TOO_MANY = "more than the 10,000 a model may have; use a smaller repeat, or fewer or smaller blocks"

#: file -> the exact lines validation reports, in order.
EXPECTED: dict[str, list[str]] = {
    # misspelled or misplaced keys
    "top_level_key_misspelled.yaml": [
        "top_level_key_misspelled.yaml:12:1: error: complie: unknown key 'complie'; did you mean 'compile'?",
    ],
    "top_level_key_misplaced.yaml": [
        "top_level_key_misplaced.yaml:3:1: error: epochs: unknown key 'epochs'; did you mean 'fit.epochs'?",
    ],
    "model_key_misspelled.yaml": [
        (
            "model_key_misspelled.yaml:4:3: error: model.inputshape: unknown key 'inputshape'; "
            "did you mean 'input_shape'?"
        ),
    ],
    "fit_key_misspelled.yaml": [
        "fit_key_misspelled.yaml:14:3: error: fit.epoch: unknown key 'epoch'; did you mean 'epochs'?",
    ],
    "layer_key_misspelled.yaml": [
        (
            "layer_key_misspelled.yaml:8:7: error: model.layers[0].kernal_size: unknown key 'kernal_size'; "
            "did you mean 'kernel_size'?"
        ),
    ],
    "layer_key_from_other_library.yaml": [
        "layer_key_from_other_library.yaml:9:7: error: model.layers[1]: missing required key 'units' (needed by Dense)",
        (
            "layer_key_from_other_library.yaml:10:7: error: model.layers[1].out_features: unknown key 'out_features'; "
            "allowed keys: type, name, inputs, units, activation, use_bias, kernel_initializer, bias_initializer"
        ),
    ],
    "optimizer_option_of_other.yaml": [
        (
            "optimizer_option_of_other.yaml:14:5: error: compile.optimizer.beta_1: unknown key 'beta_1' for sgd "
            f"(an option of adam, adamw, nadam); allowed keys: {_SGD_KEYS}"
        ),
    ],
    "optimizer_option_of_other.json": [
        (
            "optimizer_option_of_other.json:12:57: error: compile.optimizer.beta_1: unknown key 'beta_1' for sgd "
            f"(an option of adam, adamw, nadam); allowed keys: {_SGD_KEYS}"
        ),
    ],
    "data_option_of_other_source.yaml": [
        (
            "data_option_of_other_source.yaml:5:3: error: data.path: unknown key 'path' for source mnist "
            "(an option of source npz); allowed keys: source, preprocessing, num_classes, class_names, inputs, targets"
        ),
    ],
    "options_that_exclude_each_other.yaml": [
        (
            "options_that_exclude_each_other.yaml:14:16: error: compile.optimizer.clipvalue: only one of clipnorm and "
            "clipvalue can be set; received both"
        ),
        (
            "options_that_exclude_each_other.yaml:20:7: error: fit.callbacks[1]: ReduceLROnPlateau and "
            "LearningRateScheduler both set the learning rate; keep one of them"
        ),
    ],
    "callback_option_wrong.yaml": [
        "callback_option_wrong.yaml:18:17: error: fit.callbacks[0].patience: expected an integer >= 0, got '3'",
        (
            "callback_option_wrong.yaml:21:7: error: fit.callbacks[1].restore_best_weights: unknown key "
            "'restore_best_weights' for type ReduceLROnPlateau (an option of type EarlyStopping); "
            "allowed keys: type, monitor, factor, patience, mode, min_delta, cooldown, min_lr"
        ),
    ],
    # misspelled enum values
    "activation_misspelled.yaml": [
        (
            "activation_misspelled.yaml:9:19: error: model.layers[0].activation: unknown value 'rellu'; "
            f"did you mean 'relu'? expected one of: {_ACTIVATIONS}"
        ),
    ],
    "activation_misspelled.json": [
        (
            "activation_misspelled.json:7:73: error: model.layers[0].activation: unknown value 'rellu'; "
            f"did you mean 'relu'? expected one of: {_ACTIVATIONS}"
        ),
    ],
    "padding_misspelled.yaml": [
        (
            "padding_misspelled.yaml:9:16: error: model.layers[0].padding: unknown value 'samee'; "
            "did you mean 'same'? expected one of: valid, same"
        ),
    ],
    "optimizer_misspelled.yaml": [
        (
            "optimizer_misspelled.yaml:11:14: error: compile.optimizer: unknown value 'adamm'; "
            f"did you mean 'adam'? expected one of: {_OPTIMIZERS}"
        ),
    ],
    "optimizer_name_misspelled.yaml": [
        (
            "optimizer_name_misspelled.yaml:11:21: error: compile.optimizer.name: unknown value 'rmsprob'; "
            f"did you mean 'rmsprop'? expected one of: {_OPTIMIZERS}"
        ),
    ],
    "loss_misspelled.yaml": [
        (
            "loss_misspelled.yaml:12:9: error: compile.loss: unknown value 'categorical_cross_entropy'; "
            f"did you mean 'categorical_crossentropy'? expected one of: {_LOSSES}"
        ),
    ],
    "loss_keras_alias.yaml": [
        (
            "loss_keras_alias.yaml:10:9: error: compile.loss: unknown value 'mse'; "
            f"did you mean 'mean_squared_error'? expected one of: {_LOSSES}"
        ),
    ],
    "metric_misspelled.yaml": [
        (
            "metric_misspelled.yaml:13:13: error: compile.metrics[0]: unknown value 'acc'; "
            f"did you mean 'accuracy'? expected one of: {_METRICS}"
        ),
    ],
    "data_source_misspelled.yaml": [
        (
            "data_source_misspelled.yaml:4:11: error: data.source: unknown value 'mnsit'; "
            f"did you mean 'mnist'? expected one of: {_SOURCES}"
        ),
    ],
    "layer_type_wrong_case.yaml": [
        (
            "layer_type_wrong_case.yaml:6:13: error: model.layers[0].type: unknown value 'Conv2d'; "
            f"did you mean 'Conv2D'? expected one of: {_LAYERS}"
        ),
    ],
    "callback_type_misspelled.yaml": [
        (
            "callback_type_misspelled.yaml:16:13: error: fit.callbacks[0].type: unknown value 'EarlyStoping'; "
            f"did you mean 'EarlyStopping'? expected one of: {_CALLBACKS}"
        ),
    ],
    # wrong types and ranges
    "filters_quoted.yaml": [
        "filters_quoted.yaml:7:16: error: model.layers[0].filters: expected an integer >= 1, got '64'",
    ],
    "kernel_size_one_item.yaml": [
        f"kernel_size_one_item.yaml:8:20: error: model.layers[0].kernel_size: {_INT_OR_PAIR}, got [3]",
    ],
    "kernel_size_zero.yaml": [
        f"kernel_size_zero.yaml:8:20: error: model.layers[0].kernel_size: {_INT_OR_PAIR}, got 0",
    ],
    "strides_negative.yaml": [
        f"strides_negative.yaml:9:16: error: model.layers[0].strides: {_INT_OR_PAIR}, got -1",
    ],
    "use_bias_string.yaml": [
        "use_bias_string.yaml:9:17: error: model.layers[0].use_bias: expected true or false, got 'no'",
    ],
    "epochs_zero.yaml": [
        "epochs_zero.yaml:14:11: error: fit.epochs: must be >= 1, got 0",
    ],
    "batch_size_float.yaml": [
        "batch_size_float.yaml:15:15: error: fit.batch_size: expected an integer >= 1, got 1.5",
    ],
    "dropout_rate_too_big.yaml": [
        "dropout_rate_too_big.yaml:10:13: error: model.layers[1].rate: must be < 1, got 1.5",
    ],
    "validation_fraction_too_big.yaml": [
        (
            "validation_fraction_too_big.yaml:15:15: error: fit.validation: expected one of test, validation, none "
            "or a number > 0 and < 1, got 1.5"
        ),
    ],
    "callbacks_not_a_list.yaml": [
        "callbacks_not_a_list.yaml:16:5: error: fit.callbacks: expected a list of values, got a mapping",
    ],
    "name_with_space.yaml": [
        (
            "name_with_space.yaml:2:7: error: name: 'my first model' is not a valid name: use letters, digits, "
            "'.', '_' and '-', starting with a letter or digit"
        ),
    ],
    "version_2.yaml": [
        "version_2.yaml:1:10: error: version: this specforge reads spec version 1, got 2; use version: 1",
    ],
    # missing required keys
    "version_missing.yaml": [
        "version_missing.yaml:1:1: error: missing required key 'version'",
    ],
    "layers_missing.yaml": [
        "layers_missing.yaml:3:1: error: model: missing required key 'layers'",
    ],
    "layers_empty.yaml": [
        "layers_empty.yaml:5:11: error: model.layers: needs at least 1 item, got 0",
    ],
    "loss_missing.yaml": [
        "loss_missing.yaml:10:1: error: compile: missing required key 'loss'",
    ],
    "filters_missing.yaml": [
        "filters_missing.yaml:6:7: error: model.layers[0]: missing required key 'filters' (needed by Conv2D)",
    ],
    "units_missing.yaml": [
        "units_missing.yaml:6:7: error: model.layers[0]: missing required key 'units' (needed by Dense)",
    ],
    "units_missing.json": [
        "units_missing.json:7:7: error: model.layers[0]: missing required key 'units' (needed by Dense)",
    ],
    # every problem at once, in line order
    "several_errors.yaml": [
        (
            "several_errors.yaml:9:19: error: model.layers[0].activation: unknown value 'rellu'; "
            f"did you mean 'relu'? expected one of: {_ACTIVATIONS}"
        ),
        f"several_errors.yaml:11:18: error: model.layers[1].pool_size: {_INT_OR_PAIR}, got 0",
        "several_errors.yaml:15:7: error: model.layers[3].use_bais: unknown key 'use_bais'; did you mean 'use_bias'?",
        (
            "several_errors.yaml:18:14: error: compile.optimizer: unknown value 'adamm'; "
            f"did you mean 'adam'? expected one of: {_OPTIMIZERS}"
        ),
        "several_errors.yaml:21:11: error: fit.epochs: expected an integer >= 1, got 'three'",
    ],
    "several_errors.json": [
        (
            "several_errors.json:7:73: error: model.layers[0].activation: unknown value 'rellu'; "
            f"did you mean 'relu'? expected one of: {_ACTIVATIONS}"
        ),
        f"several_errors.json:8:45: error: model.layers[1].pool_size: {_INT_OR_PAIR}, got 0",
        "several_errors.json:10:38: error: model.layers[3].use_bais: unknown key 'use_bais'; did you mean 'use_bias'?",
        (
            "several_errors.json:13:28: error: compile.optimizer: unknown value 'adamm'; "
            f"did you mean 'adam'? expected one of: {_OPTIMIZERS}"
        ),
        "several_errors.json:14:21: error: fit.epochs: expected an integer >= 1, got 'three'",
    ],
    # every independent mistake at once: the schema's, the blocks', the shapes' of the rest of the model
    "several_stages.yaml": [
        (
            "several_stages.yaml:15:62: error: model.layers[0].activaton: unknown key 'activaton'; did you mean "
            "'activation'?"
        ),
        (
            "several_stages.yaml:16:37: error: model.layers[1].stride: block 'residual' has no parameter 'stride'; did "
            "you mean 'strides'?"
        ),
        (
            "several_stages.yaml:18:7: error: model.layers[3]: Add got (26, 26, 8) from 'stem' and (24, 24, 8) from "
            "'side'; Add needs inputs of one shape"
        ),
    ],
    "several_stages_value_error.yaml": [
        "several_stages_value_error.yaml:7:45: error: model.layers[1].filters: must be >= 1, got 0",
        (
            "several_stages_value_error.yaml:10:7: error: model.layers[4]: Concatenate got (26, 26, 8) from 'stem' and "
            "(26, 26, 4) from 'side'; every axis but axis 1 must agree (use axis to join along another, or resize one "
            "input)"
        ),
        (
            "several_stages_value_error.yaml:15:14: error: compile.optimizer: unknown value 'adamm'; did you mean "
            f"'adam'? expected one of: {_OPTIMIZERS}"
        ),
    ],
    # syntax errors, duplicate keys, empty files
    "yaml_bad_indentation.yaml": [
        (
            "yaml_bad_indentation.yaml:9:6: error: invalid YAML: bad indentation; indent this key like the other keys "
            "of its mapping"
        ),
    ],
    "yaml_unclosed_bracket.yaml": [
        (
            "yaml_unclosed_bracket.yaml:4:16: error: invalid YAML: this '[' is not closed; "
            "expected ',' or ']' before ':' at 5:9"
        ),
    ],
    "yaml_value_then_key.yaml": [
        (
            "yaml_value_then_key.yaml:6:24: error: invalid YAML: a ':' after a value on the same line; put each key on "
            "its own line, or quote a value that contains ': '"
        ),
    ],
    "fit_keys_dedented.yaml": [
        (
            "fit_keys_dedented.yaml:40:5: error: fit: expected a mapping, got nothing; indent the keys that belong to "
            "fit under `fit:`"
        ),
        "fit_keys_dedented.yaml:41:1: error: epochs: unknown key 'epochs'; did you mean 'fit.epochs'?",
        "fit_keys_dedented.yaml:42:1: error: batch_size: unknown key 'batch_size'; did you mean 'fit.batch_size'?",
        "fit_keys_dedented.yaml:43:1: error: validation: unknown key 'validation'; did you mean 'fit.validation'?",
        "fit_keys_dedented.yaml:44:1: error: shuffle: unknown key 'shuffle'; did you mean 'fit.shuffle'?",
        "fit_keys_dedented.yaml:45:1: error: seed: unknown key 'seed'; did you mean 'fit.seed'?",
    ],
    "yaml_tab_indent.yaml": [
        "yaml_tab_indent.yaml:8:1: error: invalid YAML: a tab cannot indent YAML; indent with spaces",
    ],
    "yaml_duplicate_key.yaml": [
        (
            "yaml_duplicate_key.yaml:9:7: error: model.layers[0].filters: duplicate key 'filters'; "
            "each key may appear once"
        ),
    ],
    "yaml_empty.yaml": [f"yaml_empty.yaml:1:1: error: {_EMPTY}"],
    "yaml_only_comments.yaml": [f"yaml_only_comments.yaml:1:1: error: {_EMPTY}"],
    "json_trailing_comma.json": [
        (
            "json_trailing_comma.json:8:62: error: invalid JSON: a comma after the last item is not allowed; "
            "remove this comma"
        ),
    ],
    "json_single_quotes.json": [
        (
            "json_single_quotes.json:8:38: error: invalid JSON: JSON needs double quotes around keys and strings; "
            "write \"...\" instead of '...'"
        ),
    ],
    "json_comment.json": [
        (
            "json_comment.json:2:3: error: invalid JSON: JSON has no comments; remove this line or write the spec "
            "in YAML"
        ),
    ],
    "json_duplicate_key.json": [
        "json_duplicate_key.json:8:63: error: model.layers[1].units: duplicate key 'units'; each key may appear once",
    ],
    "json_empty.json": [f"json_empty.json:1:1: error: {_EMPTY}"],
    # shapes: the offending layer, with the numbers put into the formula
    "kernel_larger_than_input.yaml": [
        (
            "kernel_larger_than_input.yaml:6:7: error: model.layers[0]: Conv2D output height ((5 - 7 + 2*0) / 1) + 1 "
            "= -1 is not positive; use padding: same or kernel_size <= 5"
        ),
    ],
    "kernel_larger_than_input.json": [
        (
            "kernel_larger_than_input.json:7:7: error: model.layers[0]: Conv2D output height ((5 - 7 + 2*0) / 1) + 1 "
            "= -1 is not positive; use padding: same or kernel_size <= 5"
        ),
    ],
    "kernel_larger_after_pooling.yaml": [
        (
            "kernel_larger_after_pooling.yaml:18:7: error: model.layers[4]: Conv2D output height "
            "((5 - 7 + 2*0) / 1) + 1 = -1 is not positive; use padding: same or kernel_size <= 5"
        ),
    ],
    "dilation_too_wide.yaml": [
        (
            "dilation_too_wide.yaml:6:7: error: model.layers[0]: Conv2D output height ((8 - 9 + 2*0) / 1) + 1 = 0 "
            "is not positive, with the dilated kernel 4*(3 - 1) + 1 = 9; use padding: same, kernel_size <= 2 "
            "or dilation_rate <= 3"
        ),
    ],
    "strides_with_dilation.yaml": [
        (
            "strides_with_dilation.yaml:6:7: error: model.layers[0]: Conv2D cannot combine strides > 1 with "
            "dilation_rate > 1 (received strides=2, dilation_rate=2); use strides: 1 or dilation_rate: 1"
        ),
    ],
    "pooling_too_big.yaml": [
        (
            "pooling_too_big.yaml:11:7: error: model.layers[1]: MaxPooling2D output height floor((7 - 8 + 2*0) / 8) + 1 "
            "= 0 is not positive; use padding: same or pool_size <= 7"
        ),
    ],
    "input_shape_without_channels.yaml": [
        (
            "input_shape_without_channels.yaml:6:7: error: model.layers[0]: Conv2D expects an image input "
            "(height, width, channels), got shape (28, 28); add a Reshape layer with target_shape [28, 28, 1] before it"
        ),
    ],
    "relu_negative_threshold.yaml": [
        "relu_negative_threshold.yaml:11:18: error: model.layers[1].threshold: must be >= 0, got -0.5",
    ],
    # Dense applies to the last axis of an image, as Keras' does: the mistake shows where the output meets the loss.
    "dense_without_flatten.yaml": [
        (
            "dense_without_flatten.yaml:10:7: error: model.layers[1]: the model's output has shape (26, 26, 10) but a "
            "classifier of 10 classes needs (10,); end with Flatten (or GlobalAveragePooling2D) and Dense with units: 10"
        ),
    ],
    "dense_on_sequence_without_pooling.yaml": [
        (
            "dense_on_sequence_without_pooling.yaml:7:7: error: model.layers[1]: the model's output has shape (28, 10) "
            "but a classifier of 10 classes needs (10,); end with Flatten (or GlobalAveragePooling1D) and Dense with "
            "units: 10"
        ),
    ],
    # attention and position embeddings
    "attention_key_dim_missing.yaml": [
        (
            "attention_key_dim_missing.yaml:6:7: error: model.layers[0]: missing required key 'key_dim' "
            "(needed by MultiHeadAttention)"
        ),
    ],
    "attention_key_dim_zero.yaml": [
        "attention_key_dim_zero.yaml:8:16: error: model.layers[0].key_dim: must be >= 1, got 0",
    ],
    "attention_num_heads_zero.yaml": [
        "attention_num_heads_zero.yaml:7:18: error: model.layers[0].num_heads: must be >= 1, got 0",
    ],
    "attention_four_inputs.yaml": [
        "attention_four_inputs.yaml:7:42: error: model.layers[1].inputs: takes at most 3 items, got 4",
    ],
    "attention_on_flat_input.yaml": [
        (
            "attention_on_flat_input.yaml:7:7: error: model.layers[1]: MultiHeadAttention expects sequences "
            "(steps, features), got the query (64,) from 'dense'; add a Reshape layer with target_shape [64, 1] "
            "before it"
        ),
    ],
    "attention_query_value_features_differ.yaml": [
        (
            "attention_query_value_features_differ.yaml:8:7: error: model.layers[2]: MultiHeadAttention's query "
            "(28, 32) from 'query' and value (28, 16) from 'memory' must have the same last axis (Keras' rule); "
            "give one a Dense with units 32 first"
        ),
    ],
    "attention_value_key_steps_differ.yaml": [
        (
            "attention_value_key_steps_differ.yaml:7:7: error: model.layers[1]: MultiHeadAttention's value (14, 28) "
            "from 'value' and key (28, 28) from 'input' must have the same steps (each value step is weighted by its "
            "key's score)"
        ),
    ],
    "position_embedding_too_short.yaml": [
        (
            "position_embedding_too_short.yaml:7:7: error: model.layers[1]: PositionEmbedding has sequence_length 20 "
            "positions but its input (28, 32) has 28 steps; give sequence_length at least 28"
        ),
    ],
    "reshape_element_count.yaml": [
        (
            "reshape_element_count.yaml:6:7: error: model.layers[0]: Reshape cannot turn (784,) = 784 values into "
            "(28, 28, 3) = 2352 values; the target_shape must multiply to 784"
        ),
    ],
    "loss_option_of_other.yaml": [
        (
            "loss_option_of_other.yaml:17:5: error: compile.loss.delta: unknown key 'delta' for mean_squared_error "
            "(an option of huber); allowed keys: name"
        ),
    ],
    "huber_delta_negative.yaml": [
        "huber_delta_negative.yaml:17:12: error: compile.loss.delta: must be > 0, got -1",
    ],
    "conv1d_on_image.yaml": [
        (
            "conv1d_on_image.yaml:6:7: error: model.layers[0]: Conv1D expects a sequence input (steps, channels), "
            "got shape (28, 28, 1); add a Reshape layer with target_shape [28, 28] before it"
        ),
    ],
    # recurrent layers
    "lstm_on_image.yaml": [
        (
            "lstm_on_image.yaml:6:7: error: model.layers[0]: LSTM expects a sequence input (steps, "
            "channels), got shape (28, 28, 1); add a Reshape layer with target_shape [28, 28] before it"
        ),
    ],
    "gru_on_flat_input.yaml": [
        (
            "gru_on_flat_input.yaml:6:7: error: model.layers[0]: GRU expects a sequence input (steps, "
            "channels), got shape (784,); add a Reshape layer with target_shape [784, 1] before it"
        ),
    ],
    "bidirectional_wraps_dense.yaml": [
        (
            "bidirectional_wraps_dense.yaml:7:21: error: model.layers[0].layer.type: unknown value 'Dense'; "
            "expected one of: SimpleRNN, LSTM, GRU"
        ),
    ],
    "bidirectional_merge_mode_misspelled.yaml": [
        (
            "bidirectional_merge_mode_misspelled.yaml:8:19: error: model.layers[0].merge_mode: unknown value "
            "'concatenate'; did you mean 'concat'? expected one of: concat, sum, mul, ave"
        ),
    ],
    "bidirectional_inner_option_misspelled.yaml": [
        (
            "bidirectional_inner_option_misspelled.yaml:10:9: error: model.layers[0].layer.reset_before: "
            "unknown key 'reset_before'; did you mean 'reset_after'?"
        ),
    ],
    "lstm_dropout_one.yaml": [
        "lstm_dropout_one.yaml:8:16: error: model.layers[0].dropout: must be < 1, got 1",
    ],
    "simple_rnn_activation_softmax.yaml": [
        (
            "simple_rnn_activation_softmax.yaml:8:19: error: model.layers[0].activation: unknown value "
            "'softmax'; did you mean 'softsign'? expected one of: tanh, sigmoid, relu, linear, elu, "
            "leaky_relu, softsign, softplus, hard_sigmoid"
        ),
    ],
    "bidirectional_inner_units_missing.yaml": [
        (
            "bidirectional_inner_units_missing.yaml:7:7: error: model.layers[0].layer: missing required key "
            "'units' (needed by LSTM)"
        ),
    ],
    "conv1d_kernel_too_long.yaml": [
        (
            "conv1d_kernel_too_long.yaml:12:7: error: model.layers[1]: Conv1D output steps ((7 - 9 + 2*0) / 1) + 1 "
            "= -1 is not positive; use padding: same or kernel_size <= 7"
        ),
    ],
    "transpose_output_padding.yaml": [
        (
            "transpose_output_padding.yaml:10:7: error: model.layers[1]: Conv2DTranspose output_padding must be "
            "smaller than strides along each axis (received strides=2, output_padding=2); use output_padding < "
            "strides or null"
        ),
    ],
    "transpose_same_output_padding.yaml": [
        (
            "transpose_same_output_padding.yaml:10:7: error: model.layers[1]: Conv2DTranspose output height "
            "((13 - 1)*2 + 4 - 2*2 + 0) = 24 with padding same, but TensorFlow requires ceil(24 / 2) = 12 to equal the "
            "input height 13; use output_padding 1 along height, an odd kernel_size, padding: valid or "
            "output_padding: null"
        ),
    ],
    "optimizer_epsilon_zero.yaml": [
        "optimizer_epsilon_zero.yaml:11:71: error: compile.optimizer.epsilon: must be > 0, got 0",
    ],
    "cropping_everything.yaml": [
        (
            "cropping_everything.yaml:10:7: error: model.layers[1]: Cropping2D removes 7 + 6 = 13 of the 13 columns "
            "of its input, leaving none; crop fewer than 13 columns in all"
        ),
    ],
    "layer_normalization_axis.yaml": [
        (
            "layer_normalization_axis.yaml:12:7: error: model.layers[1]: LayerNormalization axis 2 is out of range "
            "for input shape (64,) (axis 0 is the batch); use one of 1, -1"
        ),
    ],
    # the model against its data and loss
    "units_not_classes.yaml": [
        (
            "units_not_classes.yaml:13:14: error: model.layers[2].units: the model outputs 12 values but the data "
            "has 10 classes; use units: 10"
        ),
    ],
    "units_one_softmax.yaml": [
        (
            "units_one_softmax.yaml:8:14: error: model.layers[1].units: the model outputs 1 value but the data has "
            "10 classes; use units: 10"
        ),
        (
            "units_one_softmax.yaml:9:19: error: model.layers[1].activation: softmax over 1 unit always outputs 1: "
            "use one unit per class, or activation: sigmoid with binary_crossentropy for two classes"
        ),
    ],
    "loss_after_linear.yaml": [
        (
            "loss_after_linear.yaml:7:7: error: model.layers[1].activation: categorical_crossentropy expects "
            "probabilities over the classes: use activation: softmax on the last layer (received: linear)"
        ),
    ],
    "loss_after_relu.yaml": [
        (
            "loss_after_relu.yaml:9:19: error: model.layers[1].activation: categorical_crossentropy expects "
            "probabilities over the classes: use activation: softmax on the last layer (received: relu)"
        ),
    ],
    "loss_vs_sparse_labels.yaml": [
        (
            "loss_vs_sparse_labels.yaml:16:9: error: compile.loss: categorical_crossentropy takes one_hot labels but "
            "data.preprocessing.labels is sparse; use loss: sparse_categorical_crossentropy or labels: one_hot"
        ),
    ],
    "reshape_vs_input_shape.yaml": [
        (
            "reshape_vs_input_shape.yaml:6:14: error: data.preprocessing.reshape: [28, 28, 1] does not match "
            "model.input_shape [784]; use reshape: [784] or leave it out"
        ),
    ],
    # graphs: names, inputs, merges, the output
    "graph_add_channels_differ.yaml": [
        (
            "graph_add_channels_differ.yaml:8:7: error: model.layers[2]: Add got (28, 28, 16) from 'conv_b' and "
            "(28, 28, 8) from 'stem'; give the shortcut a 1x1 Conv2D with filters 16"
        ),
    ],
    "graph_add_shapes_differ.yaml": [
        (
            "graph_add_shapes_differ.yaml:9:7: error: model.layers[3]: Add got (14, 14, 8) from 'conv_b' and (28, "
            "28, 8) from 'stem'; give the shortcut a 1x1 Conv2D with strides 2"
        ),
    ],
    "graph_concatenate_axis_zero.yaml": [
        (
            "graph_concatenate_axis_zero.yaml:8:57: error: model.layers[2].axis: expected an integer <= -1 or an "
            "integer >= 1, got 0"
        ),
    ],
    "graph_concatenate_mismatch.yaml": [
        (
            "graph_concatenate_mismatch.yaml:8:7: error: model.layers[2]: Concatenate got (28, 28, 8) from 'stem' "
            "and (14, 14, 8) from 'pooled'; every axis but axis -1 must agree (use axis to join along another, or "
            "resize one input)"
        ),
    ],
    "graph_unused_branch_shapes_differ.yaml": [
        (
            "graph_unused_branch_shapes_differ.yaml:9:7: error: model.layers[2]: Concatenate got (26, 26, 4) from "
            "'narrow' and (28, 28, 6) from 'wide'; every axis but axis -1 must agree (use axis to join along another,"
            " or resize one input)"
        ),
    ],
    "graph_cycle.yaml": [
        (
            "graph_cycle.yaml:7:87: error: model.layers[1].inputs: the layers 'conv_a' -> 'conv_b' -> 'conv_a' "
            "form a cycle; a layer cannot take its input from a layer that depends on it"
        ),
    ],
    "graph_duplicate_name.yaml": [
        (
            "graph_duplicate_name.yaml:7:28: error: model.layers[1].name: the name 'stem' is already taken by "
            "model.layers[0]; layer names are unique"
        ),
    ],
    "graph_input_misspelled.yaml": [
        (
            "graph_input_misspelled.yaml:6:58: error: model.layers[0].inputs: no layer is named 'inptu'; did you "
            "mean 'input'?"
        ),
    ],
    "graph_input_unknown_layer.yaml": [
        (
            "graph_input_unknown_layer.yaml:8:87: error: model.layers[2].inputs: no layer is named 'conv_c'; did "
            "you mean 'conv_b'?"
        ),
    ],
    "graph_inputs_number.yaml": [
        ("graph_inputs_number.yaml:7:58: error: model.layers[1].inputs: expected a string or a list of strings, got 0"),
    ],
    "graph_merge_input_unknown.yaml": [
        (
            "graph_merge_input_unknown.yaml:8:36: error: model.layers[2].inputs[1]: no layer is named 'stemm'; "
            "did you mean 'stem'?"
        ),
    ],
    "graph_merge_one_input.yaml": [
        "graph_merge_one_input.yaml:7:27: error: model.layers[1].inputs: needs at least 2 items, got 1",
    ],
    "graph_merge_without_inputs.yaml": [
        ("graph_merge_without_inputs.yaml:8:7: error: model.layers[2]: missing required key 'inputs' (needed by Add)"),
    ],
    "graph_name_input_reserved.yaml": [
        (
            "graph_name_input_reserved.yaml:6:28: error: model.layers[0].name: 'input' names the input; give the "
            "layer another name"
        ),
    ],
    "graph_name_with_slash.yaml": [
        (
            "graph_name_with_slash.yaml:6:28: error: model.layers[0].name: 'stage1/conv' is not a valid layer "
            "name: use letters, digits, '_', '.' and '-', starting with a letter or '_'"
        ),
    ],
    "graph_output_not_classes.yaml": [
        (
            "graph_output_not_classes.yaml:10:41: error: model.layers[3].units: the model outputs 4 values but "
            "the data has 10 classes; use units: 10"
        ),
        (
            "graph_output_not_classes.yaml:10:7: error: model.layers[3].activation: categorical_crossentropy "
            "expects probabilities over the classes: use activation: softmax on the last layer (received: linear)"
        ),
    ],
    "graph_output_unknown.yaml": [
        ("graph_output_unknown.yaml:5:11: error: model.output: no layer is named 'dense_1'; did you mean 'dense'?"),
    ],
    "graph_self_input.yaml": [
        (
            "graph_self_input.yaml:7:87: error: model.layers[1].inputs: the layers 'conv_a' -> 'conv_a' form a "
            "cycle; a layer cannot take its input from a layer that depends on it"
        ),
    ],
    "graph_subtract_three_inputs.yaml": [
        "graph_subtract_three_inputs.yaml:8:32: error: model.layers[2].inputs: takes at most 2 items, got 3",
    ],
    "graph_two_inputs_to_conv.yaml": [
        (
            "graph_two_inputs_to_conv.yaml:8:7: error: model.layers[2]: Conv2D takes one input, got 2: stem, a; "
            "merge them first (Add, Concatenate, ...)"
        ),
    ],
    # blocks: definitions, uses, arguments, errors inside a block
    "block_argument_missing.yaml": [
        (
            "block_argument_missing.yaml:17:7: error: model.layers[1]: block 'residual' needs 'filters'; add "
            "filters: ..."
        ),
    ],
    "block_argument_out_of_range.yaml": [
        (
            "block_argument_out_of_range.yaml:17:34: error: model.layers[1].filters: argument 'filters' of block "
            "'residual' does not fit blocks.residual.layers[0].filters (line 9): must be >= 1, got 0"
        ),
    ],
    "block_argument_unknown.yaml": [
        (
            "block_argument_unknown.yaml:17:37: error: model.layers[1].stride: block 'residual' has no parameter "
            "'stride'; did you mean 'strides'?"
        ),
    ],
    "block_argument_wrong_type.yaml": [
        (
            "block_argument_wrong_type.yaml:17:46: error: model.layers[1].strides: argument 'strides' of block "
            "'residual': expected an integer, got 'two'"
        ),
    ],
    "block_definition_bad_option.yaml": [
        (
            "block_definition_bad_option.yaml:10:70: error: blocks.residual.layers[1].kernel_size: expected an "
            "integer >= 1 or a list of 2 integers or a block parameter like $filters, got 0"
        ),
    ],
    "block_duplicate_name_inside.yaml": [
        (
            "block_duplicate_name_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 11 "
            "(blocks.residual.layers[2].name): the name 'conv_b' is already taken by blocks.residual.layers[1]; "
            "layer names are unique"
        ),
        (
            "block_duplicate_name_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 12 "
            "(blocks.residual.layers[3].inputs[1]): no layer is named 'shortcut'; the names are: input, conv_a, "
            "conv_b, add"
        ),
    ],
    "block_input_unknown_inside.yaml": [
        (
            "block_input_unknown_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 12 "
            "(blocks.residual.layers[3].inputs[1]): no layer is named 'shortcutt'; did you mean 'shortcut'?"
        ),
    ],
    "block_layers_missing.yaml": [
        "block_layers_missing.yaml:4:3: error: blocks.residual: missing required key 'layers'",
    ],
    "block_nested_error.yaml": [
        (
            "block_nested_error.yaml:22:7: error: model.layers[1]: in block 'stage' > 'residual' at line 12 "
            "(blocks.residual.layers[3]): Add got (14, 14, 8) from 'stage/residual/conv_b' and (28, 28, 8) from "
            "'stage/residual/shortcut'; give the shortcut a 1x1 Conv2D with strides 2"
        ),
    ],
    "block_output_unknown.yaml": [
        (
            "block_output_unknown.yaml:18:7: error: model.layers[1]: in block 'residual' at line 13 "
            "(blocks.residual.output): no layer is named 'ad'; did you mean 'add'?"
        ),
    ],
    "block_param_type_unknown.yaml": [
        (
            "block_param_type_unknown.yaml:6:23: error: blocks.residual.params.filters.type: unknown value 'int'; "
            "did you mean 'integer'? expected one of: integer, number, string, boolean, array"
        ),
    ],
    "block_parameter_misspelled.yaml": [
        (
            "block_parameter_misspelled.yaml:17:7: error: model.layers[1]: in block 'residual' at line 10 "
            "(blocks.residual.layers[1].kernel_size): block 'residual' has no parameter 'kernel'; its parameters "
            "are: filters, strides"
        ),
    ],
    "block_repeat_zero.yaml": [
        "block_repeat_zero.yaml:17:45: error: model.layers[1].repeat: must be >= 1, got 0",
    ],
    "block_shapes_differ_inside.yaml": [
        (
            "block_shapes_differ_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 12 "
            "(blocks.residual.layers[3]): Add got (14, 14, 8) from 'residual/conv_b' and (28, 28, 8) from "
            "'residual/shortcut'; give the shortcut a 1x1 Conv2D with strides 2"
        ),
    ],
    "block_two_inputs.yaml": [
        (
            "block_two_inputs.yaml:18:45: error: model.layers[2].inputs: a block takes one input, got 2; merge "
            "them first (Add, Concatenate, ...) or use the block on each"
        ),
    ],
    "block_unknown.yaml": [
        (
            "block_unknown.yaml:17:15: error: model.layers[1].block: no block is named 'residul'; did you mean "
            "'residual'?"
        ),
    ],
    "block_uses_itself.yaml": [
        (
            "block_uses_itself.yaml:18:7: error: model.layers[1]: in block 'residual' at line 13 "
            "(blocks.residual.layers[4].block): block 'residual' uses itself ('residual' -> 'residual'); a block "
            "cannot contain itself"
        ),
    ],
    # a mistake inside a block used more than once: reported once, naming every use
    "block_twice_duplicate_name_inside.yaml": [
        (
            "block_twice_duplicate_name_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 11 "
            "(blocks.residual.layers[2].name), used by model.layers[1] (line 17) and model.layers[2] (line 18): the "
            "name 'conv_b' is already taken by blocks.residual.layers[1]; layer names are unique"
        ),
        (
            "block_twice_duplicate_name_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 12 "
            "(blocks.residual.layers[3].inputs[1]), used by model.layers[1] (line 17) and model.layers[2] (line 18): "
            "no layer is named 'shortcut'; the names are: input, conv_a, conv_b, add"
        ),
    ],
    "block_twice_input_unknown_inside.yaml": [
        (
            "block_twice_input_unknown_inside.yaml:17:7: error: model.layers[1]: in block 'residual' at line 12 "
            "(blocks.residual.layers[3].inputs[1]), used by model.layers[1] (line 17) and model.layers[2] (line 18): "
            "no layer is named 'shortcutt'; did you mean 'shortcut'?"
        ),
    ],
    "block_twice_mutual_recursion.yaml": [
        (
            "block_twice_mutual_recursion.yaml:19:7: error: model.layers[0]: in block 'down' > 'up' at line 15 "
            "(blocks.up.layers[1].block), used by model.layers[0] (line 19), model.layers[1] (line 20) and "
            "model.layers[2] (line 21): block 'down' uses itself ('down' -> 'up' -> 'down'); a block cannot contain "
            "itself"
        ),
    ],
    "block_twice_output_unknown.yaml": [
        (
            "block_twice_output_unknown.yaml:18:7: error: model.layers[1]: in block 'residual' at line 13 "
            "(blocks.residual.output), used by model.layers[1] (line 18) and model.layers[2] (line 19): no layer is "
            "named 'ad'; did you mean 'add'?"
        ),
    ],
    "block_twice_parameter_misspelled.yaml": [
        (
            "block_twice_parameter_misspelled.yaml:17:7: error: model.layers[1]: in block 'residual' at line 10 "
            "(blocks.residual.layers[1].kernel_size), used by model.layers[1] (line 17) and model.layers[2] (line "
            "18): block 'residual' has no parameter 'kernel'; its parameters are: filters, strides"
        ),
    ],
    "block_twice_uses_itself.yaml": [
        (
            "block_twice_uses_itself.yaml:18:7: error: model.layers[1]: in block 'residual' at line 13 "
            "(blocks.residual.layers[4].block), used by model.layers[1] (line 18) and model.layers[2] (line 19): "
            "block 'residual' uses itself ('residual' -> 'residual'); a block cannot contain itself"
        ),
    ],
    # a parameter's default: at its own line, once, however many uses leave it out
    "block_default_does_not_fit.yaml": [
        (
            "block_default_does_not_fit.yaml:7:41: error: blocks.residual.params.strides.default: the default of "
            "parameter 'strides' of block 'residual' does not fit blocks.residual.layers[0].strides (line 9): expected "
            "an integer >= 1 or a list of 2 integers, got 0"
        ),
    ],
    "block_default_below_its_minimum.yaml": [
        (
            "block_default_below_its_minimum.yaml:7:41: error: blocks.residual.params.strides.default: the default of "
            "parameter 'strides' of block 'residual': must be >= 2, got 1"
        ),
    ],
    # the expanded graph's bound, counted before anything is expanded
    "block_repeat_billion.yaml": [
        (
            "block_repeat_billion.yaml:17:45: error: model.layers[1].repeat: this use of block 'residual' "
            f"(1,000,000,000 x 4 layers) takes the model to 4,000,000,001 layers, {_TOO_MANY}"
        ),
    ],
    "block_repeat_million.yaml": [
        (
            "block_repeat_million.yaml:17:45: error: model.layers[1].repeat: this use of block 'residual' "
            f"(1,000,000 x 4 layers) takes the model to 4,000,001 layers, {_TOO_MANY}"
        ),
    ],
    "blocks_doubling_forty_times.yaml": [
        (
            "blocks_doubling_forty_times.yaml:41:17: error: blocks.b9.layers[0].block: block 'b8' is nested 33 deep "
            "here (model > 'b40' > 'b39' > 'b38' > ... 27 more > 'b10' > 'b9' > 'b8'); blocks nest at most 32 deep: "
            "use fewer levels of blocks"
        ),
        (
            "blocks_doubling_forty_times.yaml:62:9: error: blocks.b14.layers[1]: this use of block 'b13' (8,192 "
            f"layers) takes block 'b14' to 16,384 layers, {_TOO_MANY}"
        ),
    ],
    "blocks_nested_too_deep.yaml": [
        (
            "blocks_nested_too_deep.yaml:99:17: error: blocks.level32.layers[0].block: block 'level33' is nested 33 "
            "deep here (model > 'level1' > 'level2' > 'level3' > ... 27 more > 'level31' > 'level32' > 'level33'); "
            "blocks nest at most 32 deep: use fewer levels of blocks"
        ),
    ],
    # table specs: what the spec says about its columns, refused before the data is read
    "table_fill_median_on_category.yaml": [
        (
            "table_fill_median_on_category.yaml:8:48: error: data.features[1].fill: fill median needs numbers and column "
            "'color' is categorical; use fill: most_frequent, or constant with a fill_value"
        ),
    ],
    "table_fill_constant_without_value.yaml": [
        (
            "table_fill_constant_without_value.yaml:8:13: error: data.features[0].fill: fill: constant needs fill_value, "
            "the value a missing cell takes; add fill_value: 0 (say), or use fill: mean"
        ),
    ],
    # a model of token ids
    "embedding_fed_floats.yaml": [
        (
            "embedding_fed_floats.yaml:8:7: error: model.layers[0]: Embedding takes integer token ids and data source "
            "mnist gives values, not ids; use source: text_folder with vectorize.output_mode: int, or a table's text "
            "column with output_mode: int"
        ),
    ],
    "embedding_after_dense.yaml": [
        (
            "embedding_after_dense.yaml:9:7: error: model.layers[1]: Embedding takes int ids, which only the model's "
            "input holds; give it `inputs: input` and the model token ids (source: text_folder with "
            "vectorize.output_mode: int)"
        ),
    ],
    "text_sequence_length_with_counts.yaml": [
        (
            "text_sequence_length_with_counts.yaml:6:59: error: data.vectorize.output_sequence_length: "
            "output_sequence_length applies to output_mode int only, and output_mode is count; leave "
            "output_sequence_length out"
        ),
    ],
    "text_sequence_length_zero.yaml": [
        "text_sequence_length_zero.yaml:8:29: error: data.vectorize.output_sequence_length: must be >= 1, got 0",
    ],
    # a table's text columns
    "table_text_sequence_length_zero.yaml": [
        "table_text_sequence_length_zero.yaml:9:43: error: data.features[0].vectorize.output_sequence_length: must be >= 1, got 0",
    ],
    "table_text_sequence_length_with_tf_idf.yaml": [
        "table_text_sequence_length_with_tf_idf.yaml:9:64: error: data.features[0].vectorize.output_sequence_length: output_sequence_length applies to output_mode int only, and output_mode is tf_idf; leave output_sequence_length out",
    ],
    "table_text_ids_beside_other_columns.yaml": [
        "table_text_ids_beside_other_columns.yaml:7:7: error: data.features[0]: text column 'message' gives token ids (output_mode int), which are the model's whole input, and data.features lists 2 columns; list it alone, give it a model input of its own (model.inputs and data.inputs), or give it vectorize.output_mode multi_hot, count or tf_idf to put it beside the other columns",
    ],
    "table_text_ids_mixed_in_an_input.yaml": [
        "table_text_ids_mixed_in_an_input.yaml:13:12: error: data.inputs.text[0]: column 'message' gives token ids (output_mode int) and input 'text' takes the values of 'length' too; give the ids a model input of their own (data.inputs.message: [message] with an Embedding taking it), or give the column vectorize.output_mode multi_hot, count or tf_idf",
    ],
    "table_text_ids_and_values_of_one_column.yaml": [
        "table_text_ids_and_values_of_one_column.yaml:13:12: error: data.inputs.text[0]: column 'message' is listed as token ids (output_mode int) and as values, and data.inputs feeds a column's features to one input, 'text', of one dtype; keep one of the column's text features",
    ],
    "table_text_ids_input_taken_by_dense.yaml": [
        "table_text_ids_input_taken_by_dense.yaml:16:5: error: model.inputs.text: data.inputs.text gives the token ids of column 'message' (output_mode int) and the layers taking input 'text' take values; take it with an Embedding, or give the column vectorize.output_mode multi_hot, count or tf_idf",
    ],
    "table_values_input_taken_by_embedding.yaml": [
        "table_values_input_taken_by_embedding.yaml:17:5: error: model.inputs.counts: input 'counts' takes integer token ids (Embedding) and data.inputs.counts gives values; feed it one text column of output_mode int (the default), alone, or take it with layers of values (Dense)",
    ],
    "table_image_beside_other_columns.yaml": [
        "table_image_beside_other_columns.yaml:12:11: error: data.inputs.both: image column 'image' feeds a model input of its own and data.inputs.both lists 2 columns; give it a group of its own (e.g. image: [image], with model.inputs.image: {shape: [28, 28, 1]}) and keep the other columns in both",
    ],
    "table_image_input_shape.yaml": [
        "table_image_input_shape.yaml:16:20: error: model.inputs.digit.shape: data.inputs.digit is image column 'image' of shape [28, 28, 1] and the input's shape is [784]; use shape: [28, 28, 1]",
    ],
    "table_image_listed_twice.yaml": [
        "table_image_listed_twice.yaml:9:16: error: data.features[1].column: image column 'image' is listed twice (also data.features[0]); an image column feeds one model input: list it once",
    ],
    "table_image_options_on_numeric_column.yaml": [
        "table_image_options_on_numeric_column.yaml:7:26: error: data.features[0].shape: shape applies to image columns and column 'n' is numeric; add type: image, or leave shape out",
        "table_image_options_on_numeric_column.yaml:7:48: error: data.features[0].rescale: rescale applies to image columns and column 'n' is numeric; add type: image, or leave rescale out",
    ],
    "table_image_shape_missing.yaml": [
        "table_image_shape_missing.yaml:7:7: error: data.features[0]: missing required key 'shape' (needed by image)",
    ],
    "table_image_two_channels.yaml": [
        "table_image_two_channels.yaml:8:62: error: data.features[0].fill: an image column has no missing values to fill (every row names an image file); leave fill out",
        "table_image_two_channels.yaml:8:52: error: data.features[0].shape[2]: images convert to 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, not 2; use one of them",
    ],
    "table_image_without_inputs.yaml": [
        "table_image_without_inputs.yaml:8:7: error: data.features[0]: image column 'image' feeds a model input of its own; give model.inputs and data.inputs, with the column alone in its group (e.g. data.inputs.image: [image] and model.inputs.image: {shape: [28, 28, 1]}) and the other columns in another",
    ],
    "table_vectorize_on_numeric_column.yaml": [
        "table_vectorize_on_numeric_column.yaml:7:35: error: data.features[0].vectorize: vectorize applies to text columns and column 'length' is numeric; add type: text, or leave vectorize out",
    ],
    "table_text_fill.yaml": [
        "table_text_fill.yaml:7:43: error: data.features[0].fill: a text column's missing cells are empty documents (data info counts them); leave fill out",
        "table_text_fill.yaml:7:65: error: data.features[0].fill_value: a text column's missing cells are empty documents (data info counts them); leave fill_value out",
    ],
    "table_text_output_mode_misspelled.yaml": [
        "table_text_output_mode_misspelled.yaml:9:32: error: data.features[0].vectorize.output_mode: unknown value 'ids'; expected one of: int, multi_hot, count, tf_idf",
    ],
    "table_text_max_tokens_too_small.yaml": [
        "table_text_max_tokens_too_small.yaml:9:31: error: data.features[0].vectorize.max_tokens: must be >= 3, got 2",
    ],
    "table_text_type_misspelled.yaml": [
        "table_text_type_misspelled.yaml:7:31: error: data.features[0].type: unknown value 'txt'; did you mean 'text'? expected one of: numeric, categorical, binary, text, image",
    ],
    "table_text_ngrams_one.yaml": [
        "table_text_ngrams_one.yaml:9:55: error: data.features[0].vectorize.ngrams: must be >= 2, got 1",
    ],
    "table_column_listed_twice.yaml": [
        (
            "table_column_listed_twice.yaml:9:16: error: data.features[2].column: column 'alcohol' is listed twice (also "
            "data.features[0]) with the same encoding, which only copies an input; list each column once"
        ),
        (
            "table_column_listed_twice.yaml:10:16: error: data.features[3].column: column 'color' is listed twice (also "
            "data.features[1]) as numbers once and as text once; give each column one kind (numeric, or "
            "categorical/binary) and list it once"
        ),
        (
            "table_column_listed_twice.yaml:11:16: error: data.features[4].column: column 'cultivar' is the target; a "
            "model cannot take its target as a feature: remove it from data.features"
        ),
    ],
    "input_shape_missing.yaml": [
        "input_shape_missing.yaml:3:1: error: model: missing required key 'input_shape'",
    ],
    # augmentation layers and training options
    "augmentation_on_vector_input.yaml": [
        (
            "augmentation_on_vector_input.yaml:6:7: error: model.layers[0]: RandomFlip augments images (height, width, "
            "channels), got shape (784,); use it on an image input (model.input_shape [height, width, channels])"
        ),
    ],
    "augmentation_after_conv.yaml": [
        (
            "augmentation_after_conv.yaml:13:7: error: model.layers[2]: RandomZoom comes after layer conv, which changes "
            "what the image means; augmentation layers go first, before the first layer that is not one (each takes "
            "the model's input or another augmentation layer's output)"
        ),
    ],
    "schedule_warmup_longer_than_training.yaml": [
        (
            "schedule_warmup_longer_than_training.yaml:18:21: error: compile.optimizer.learning_rate.warmup_steps: the "
            "warmup takes 5000 steps but training takes 3750 (2 epochs of 1875 batches); use warmup_steps <= 3750 or "
            "more epochs"
        ),
    ],
    "schedule_name_misspelled.yaml": [
        (
            "schedule_name_misspelled.yaml:10:27: error: compile.optimizer.learning_rate.name: unknown value "
            "'cosine_decay_restart'; did you mean 'cosine_decay_restarts'? expected one of: exponential_decay, "
            "piecewise_constant_decay, polynomial_decay, cosine_decay, cosine_decay_restarts"
        ),
    ],
    "schedule_with_reduce_lr_callback.yaml": [
        (
            "schedule_with_reduce_lr_callback.yaml:15:7: error: fit.callbacks[0]: ReduceLROnPlateau sets the learning "
            "rate, and compile.optimizer.learning_rate is a schedule; keep one of them"
        ),
    ],
    # named model inputs and outputs (model.inputs, model.outputs, data.inputs, data.targets)
    "inputs_column_feeds_no_input.yaml": [
        "inputs_column_feeds_no_input.yaml:11:16: error: data.features[3].column: column 'worst_texture' feeds no model input; add it to a group of data.inputs or remove it from data.features",
    ],
    "inputs_column_not_a_feature.yaml": [
        "inputs_column_not_a_feature.yaml:14:25: error: data.inputs.mean[1]: column 'mean_area' is not among data.features; did you mean 'mean_radius'?",
        "inputs_column_not_a_feature.yaml:9:16: error: data.features[1].column: column 'mean_texture' feeds no model input; add it to a group of data.inputs or remove it from data.features",
    ],
    "inputs_data_names_no_input.yaml": [
        "inputs_data_names_no_input.yaml:15:5: error: data.inputs.wrost: names input 'wrost', which the model does not have; did you mean 'worst'?",
        "inputs_data_names_no_input.yaml:19:5: error: model.inputs.worst: no data feeds model input 'worst'; add data.inputs.worst: [the feature columns it takes]",
    ],
    "inputs_layer_named_like_input.yaml": [
        "inputs_layer_named_like_input.yaml:21:27: error: model.layers[0].name: 'worst' names a model input (model.inputs); give the layer another name",
    ],
    "inputs_not_fed_by_data.yaml": [
        "inputs_not_fed_by_data.yaml:18:5: error: model.inputs.worst: no data feeds model input 'worst'; add data.inputs.worst: [the feature columns it takes]",
    ],
    "inputs_shape_against_columns.yaml": [
        "inputs_shape_against_columns.yaml:19:20: error: model.inputs.worst.shape: data.inputs.worst encodes to 2 values per row and the input's shape is [3]; use shape: [2]",
    ],
    "inputs_taken_by_no_layer.yaml": [
        "inputs_taken_by_no_layer.yaml:19:5: error: model.inputs.worst: no layer takes model input 'worst'; name it in the `inputs` of a layer an output depends on, or remove it",
    ],
    "inputs_two_from_mnist.yaml": [
        "inputs_two_from_mnist.yaml:9:12: error: model.inputs.right: source mnist feeds one model input and the model has 2; keep one input, or feed several from a table's feature columns (source: table with data.inputs)",
    ],
    "inputs_with_input_shape.yaml": [
        "inputs_with_input_shape.yaml:20:16: error: model.input_shape: model.inputs names the model's inputs and gives each its shape; remove model.input_shape",
    ],
    "outputs_class_weight.yaml": [
        "outputs_class_weight.yaml:21:17: error: fit.class_weight: class_weight weighs the examples of one output and the model has 2; remove it",
    ],
    "outputs_layer_unknown.yaml": [
        "outputs_layer_unknown.yaml:17:21: error: model.outputs.parity.layer: no layer is named 'partiy'; did you mean 'parity'?",
    ],
    "outputs_loss_weight_unknown.yaml": [
        "outputs_loss_weight_unknown.yaml:20:30: error: compile.loss_weights.parity_head: names output 'parity_head', which the model does not have; did you mean 'parity'?",
    ],
    "outputs_target_map_too_short.yaml": [
        "outputs_target_map_too_short.yaml:8:19: error: data.targets.parity.map: map gives 5 classes for the data's 10; give one class per data label",
    ],
    "outputs_target_names_no_output.yaml": [
        "outputs_target_names_no_output.yaml:8:5: error: data.targets.partiy: names output 'partiy', which the model does not have; did you mean 'parity'?",
        "outputs_target_names_no_output.yaml:17:5: error: model.outputs.parity: output 'parity' has no target; add data.targets.parity: {} (the data's labels) or {map: [the class of each label]}",
    ],
    "yaml_outputs_two_with_one_name.yaml": [
        "yaml_outputs_two_with_one_name.yaml:17:5: error: model.outputs.digit: duplicate key 'digit'; each key may appear once",
    ],
    "outputs_units_against_target_map.yaml": [
        "outputs_units_against_target_map.yaml:14:42: error: model.layers[2].units: the model outputs 3 values but data.targets.parity gives 2 classes; use units: 2",
    ],
    "outputs_without_loss.yaml": [
        "outputs_without_loss.yaml:17:5: error: model.outputs.parity: output 'parity' has no loss; give it `loss:` (or compile.loss, which every output without its own takes)",
    ],
    "outputs_without_target.yaml": [
        "outputs_without_target.yaml:16:5: error: model.outputs.parity: output 'parity' has no target; add data.targets.parity: {} (the data's labels) or {map: [the class of each label]}",
    ],
    "class_weight_unknown_class.yaml": [
        (
            "class_weight_unknown_class.yaml:16:5: error: fit.class_weight.10: class_weight names class '10', which the "
            "model does not have; use classes 0..9"
        ),
    ],
    "sweep_over_ray_workers.yaml": [
        (
            "sweep_over_ray_workers.yaml:14:12: error: fit.backend: a sweep trains each trial in the one process it "
            "gives the trial, which reports the objective after every epoch so that the search can prune; fit.backend "
            "ray would train each trial on data-parallel Ray Train workers of its own, taking the CPUs the other "
            "trials run on; sweep with fit.backend torch (and sweep.resources for each trial's CPUs and GPU share on "
            "Ray Tune)"
        ),
    ],
    "sweep_gpu_share_on_numpy.yaml": [
        (
            "sweep_gpu_share_on_numpy.yaml:17:28: error: sweep.resources.gpu: the numpy backend trains on CPUs; a "
            "trial trains on its GPU share with fit.backend: torch"
        ),
    ],
    "label_smoothing_too_big.yaml": [
        "label_smoothing_too_big.yaml:11:22: error: compile.loss.label_smoothing: must be <= 1, got 1.5",
    ],
    "class_weight_on_numeric_target.yaml": [
        (
            "class_weight_on_numeric_target.yaml:17:17: error: fit.class_weight: class_weight weighs classes and the "
            "target is numeric; use data.sample_weight to weight examples"
        ),
    ],
    "schedule_piecewise_values_count.yaml": [
        (
            "schedule_piecewise_values_count.yaml:13:15: error: compile.optimizer.learning_rate.values: 2 boundaries "
            "need 3 values (one before the first boundary, one after each), got 2"
        ),
    ],
    "class_weight_balance_misspelled.yaml": [
        (
            "class_weight_balance_misspelled.yaml:11:17: error: fit.class_weight: expected null or 'balanced' or a "
            "mapping, got 'balance'"
        ),
    ],
    "augmentation_flip_mode_misspelled.yaml": [
        (
            "augmentation_flip_mode_misspelled.yaml:6:32: error: model.layers[0].mode: unknown value 'horizontal_flip'; "
            "did you mean 'horizontal'? expected one of: horizontal, vertical, horizontal_and_vertical"
        ),
    ],
    "augmentation_brightness_factor_too_big.yaml": [
        (
            "augmentation_brightness_factor_too_big.yaml:6:40: error: model.layers[0].factor: expected a number >= -1.0 "
            "and <= 1.0 or a list of 2 numbers, got 1.5"
        ),
    ],
    "augmentation_after_branch.yaml": [
        (
            "augmentation_after_branch.yaml:8:7: error: model.layers[2]: RandomRotation comes after layer left, which "
            "changes what the image means; augmentation layers go first, before the first layer that is not one (each "
            "takes the model's input or another augmentation layer's output)"
        ),
    ],
}

#: ``--set`` options applied to the seed spec -> the exact lines.
OVERRIDES: dict[tuple[str, ...], list[str]] = {
    ("fit.epochs=0",): ["--set fit.epochs=0: error: fit.epochs: must be >= 1, got 0"],
    ("compile.optimizer=adamm",): [
        (
            "--set compile.optimizer=adamm: error: compile.optimizer: unknown value 'adamm'; did you mean 'adam'? "
            f"expected one of: {_OPTIMIZERS}"
        ),
    ],
    ("fit.epoch=3",): ["--set fit.epoch=3: error: fit.epoch: unknown key 'epoch'; did you mean 'epochs'?"],
    ("model.layers[3].units=12",): [
        (
            "--set model.layers[3].units=12: error: model.layers[3].units: the model outputs 12 values but the data "
            "has 10 classes; use units: 10"
        ),
    ],
    ("fit.epochs",): [
        "--set: error: --set takes PATH=VALUE like fit.epochs=1 or model.layers[0].filters=32, got 'fit.epochs'",
    ],
    ("model.layers[7].units=3",): [
        "--set model.layers[7].units=3: error: model.layers[7]: does not exist; model.layers has 4 items (0 to 3)",
    ],
    ("model.layers[0].kernel_size=29",): [
        (
            "--set model.layers[0].kernel_size=29: error: model.layers[0]: Conv2D output height "
            "((28 - 29 + 2*0) / 1) + 1 = 0 is not positive; use padding: same or kernel_size <= 28"
        ),
    ],
}

#: corpus files also checked through the real command line.
CLI_CASES = [
    "outputs_without_loss.yaml",
    "inputs_shape_against_columns.yaml",
    "several_errors.yaml",
    "several_stages.yaml",
    "kernel_larger_than_input.yaml",
    "loss_vs_sparse_labels.yaml",
    "graph_add_shapes_differ.yaml",
    "block_argument_out_of_range.yaml",
    "block_nested_error.yaml",
    "block_twice_mutual_recursion.yaml",
    "blocks_doubling_forty_times.yaml",
    "table_column_listed_twice.yaml",
    "yaml_duplicate_key.yaml",
    "json_single_quotes.json",
    "embedding_fed_floats.yaml",
    "table_text_ids_beside_other_columns.yaml",
    "table_image_beside_other_columns.yaml",
    "table_text_ids_mixed_in_an_input.yaml",
]

_LINE = re.compile(r"(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): error: (?:(?P<path>[^ :]+): )?(?P<message>.*)")


def _params(table: dict) -> list:
    return [pytest.param(key, id=key if isinstance(key, str) else " ".join(key)) for key in table]


def validation_errors(path: str | Path, overrides: Sequence[str] = ()) -> SpecforgeError | None:
    """The error ``api.validate`` raises for ``path``, or None when the spec is valid."""
    try:
        api.validate(path, overrides)
    except SpecforgeError as error:
        return error
    return None


def error_lines(path: str | Path, overrides: Sequence[str] = ()) -> list[str]:
    error = validation_errors(path, overrides)
    assert error is not None, f"{path} passed validation"
    return [problem.format() for problem in error.problems]


def paths_and_messages(path: str | Path) -> list[tuple[str, str]]:
    """Each problem's spec path and message, the lines a message names inside a block left out (a JSON
    twin writes the same spec on other lines)."""
    error = validation_errors(path)
    return (
        [] if error is None else [(p.location.path, re.sub(r"line \d+", "line N", p.message)) for p in error.problems]
    )


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "specforge", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def in_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)


def test_every_corpus_file_has_expected_lines():
    files = {path.name for path in CORPUS.iterdir()}
    assert files == set(EXPECTED)
    assert len(files) >= 36 and sum(name.endswith(".json") for name in files) >= 5


@pytest.mark.parametrize("name", _params(EXPECTED))
def test_invalid_spec_reports_exact_lines(name: str, in_corpus: None):
    assert error_lines(name) == EXPECTED[name]


@pytest.mark.parametrize("overrides", _params(OVERRIDES))
def test_override_errors_point_at_the_option(overrides: tuple[str, ...]):
    assert error_lines(SEED, overrides) == OVERRIDES[overrides]


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_prints_one_line_per_problem_and_exits_2(name: str):
    result = run_cli("validate", f"tests/spec/invalid/{name}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"tests/spec/invalid/{line}" for line in EXPECTED[name]]


def test_cli_override_error_exits_2():
    result = run_cli("validate", "specs/mnist.yaml", "--set", "fit.epochs=0")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == OVERRIDES[("fit.epochs=0",)]


def test_cli_json_errors_match_the_lines():
    result = run_cli("validate", "--json", "tests/spec/invalid/several_errors.yaml")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    expected = []
    for line in EXPECTED["several_errors.yaml"]:
        parts = _LINE.fullmatch(line).groupdict()
        expected.append(
            {
                "file": f"tests/spec/invalid/{parts['file']}",
                "line": int(parts["line"]),
                "column": int(parts["column"]),
                "path": parts["path"],
                "message": parts["message"],
            }
        )
    assert json.loads(result.stdout) == {"valid": False, "errors": expected}


# -- YAML and JSON say the same thing -------------------------------------------------------------


def _json_twin(yaml_path: Path, directory: Path) -> Path:
    twin = directory / f"{yaml_path.stem}.json"
    twin.write_text(json.dumps(yaml.safe_load(yaml_path.read_text(encoding="utf-8")), indent=2), encoding="utf-8")
    return twin


@pytest.mark.parametrize("seed", sorted((REPO / "specs").glob("*.yaml")), ids=lambda path: path.name)
def test_json_twin_of_a_valid_spec_resolves_and_summarises_the_same(seed: Path, tmp_path: Path):
    (tmp_path / "data").symlink_to(seed.parent / "data")  # the reference tables' files, where the twin looks
    spec, graph = api.validate(seed)
    twin_spec, twin_graph = api.validate(_json_twin(seed, tmp_path))
    assert twin_spec.config == spec.config
    summary, twin_summary = summary_json(spec, graph), summary_json(twin_spec, twin_graph)
    assert summary.pop("file") == str(seed) and twin_summary.pop("file") == str(tmp_path / f"{seed.stem}.json")
    assert twin_summary == summary


TWIN_PAIRS = sorted(path.stem for path in CORPUS.glob("*.json") if path.with_suffix(".yaml").exists())


def test_the_corpus_has_yaml_json_pairs():
    assert len(TWIN_PAIRS) >= 3


@pytest.mark.parametrize("stem", TWIN_PAIRS)
def test_yaml_and_json_pair_give_the_same_errors(stem: str):
    yaml_errors = paths_and_messages(CORPUS / f"{stem}.yaml")
    assert yaml_errors and yaml_errors == paths_and_messages(CORPUS / f"{stem}.json")


#: YAML files whose content survives a round trip through JSON (not syntax, duplicate-key or empty cases), and
#: that read no table beside the repository's specs (a twin elsewhere would not find it).
CONTENT_CASES = sorted(
    path.name
    for path in CORPUS.glob("*.yaml")
    if not path.name.startswith("yaml_") and "../specs/data/" not in path.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", CONTENT_CASES)
def test_json_twin_of_an_invalid_spec_gives_the_same_errors(name: str, tmp_path: Path):
    original = CORPUS / name
    errors = paths_and_messages(original)
    assert errors, f"{name} passed validation"
    assert sorted(errors) == sorted(paths_and_messages(_json_twin(original, tmp_path)))
