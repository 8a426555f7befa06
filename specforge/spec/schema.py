"""The spec's JSON Schema (draft-07), assembled from the parts that own each section.

Layer kinds contribute their own fragments (``Layer.json_schema``), as do the
data sources, losses, optimizers, metrics and callbacks.  The assembled schema
is written to ``specforge/specforge.schema.json`` (``schemas/`` links to it);
``load_schema`` reads that file, and a test fails when it is stale.
Regenerate with ``python -m specforge.spec`` (which also refreshes the README's reference).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path

from specforge.base.fileio import write_text
from specforge.base.registry import NAME_PATTERN
from specforge.data.schema import DATA_SCHEMA
from specforge.data.sources import SOURCES
from specforge.layers import REGISTRY
from specforge.layers.base import LAYER_NAME_PATTERN
from specforge.options.callbacks import CALLBACKS_SCHEMA
from specforge.options.losses import CLASS_WEIGHT_SCHEMA, LOSS_SCHEMA
from specforge.options.metrics import METRICS_SCHEMA
from specforge.options.optimizers import OPTIMIZER_SCHEMA
from specforge.spec.sweep_schema import SWEEP_SCHEMA

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "specforge.schema.json"
SPEC_VERSION = 1

#: ``model.inputs``: the model's named inputs, graph sources layers take by name.
INPUTS_SCHEMA = {
    "description": "The model's named inputs (Keras' functional inputs), in the order the export lists them: "
    "input name -> its shape and dtype. Layers take one by its name in `inputs` (the first layer, "
    "without `inputs`, takes the first). A table feeds each input the feature columns that "
    "data.inputs gives it; another source feeds a single input. Instead of model.input_shape.",
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": LAYER_NAME_PATTERN},
    "additionalProperties": {
        "type": "object",
        "required": ["shape"],
        "additionalProperties": False,
        "properties": {
            "shape": {
                "description": "Shape of one example of this input without the batch axis, as model.input_shape.",
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "maxItems": 3,
            },
            "dtype": {
                "description": "What the input holds: float32 values, or int64 token ids (for Embedding). "
                "Default: what the layers taking it take.",
                "enum": ["float32", "int64"],
            },
        },
    },
    "examples": [{"mean": {"shape": [10]}, "worst": {"shape": [10]}}],
}

#: ``model.outputs``: the model's named outputs, graph sinks, each with its own loss and metrics.
OUTPUTS_SCHEMA = {
    "description": "The model's named outputs (Keras' functional outputs), in the order the export lists them: "
    "output name -> the layer whose output it is, its loss (default: compile.loss) and metrics "
    "(default: compile.metrics). Each output's target is data.targets' entry of its name; "
    "compile.loss_weights weighs their losses. History and progress name each output's values "
    "as Keras does: `digit_loss`, `val_parity_accuracy`, beside the total `loss`.",
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": LAYER_NAME_PATTERN},
    "additionalProperties": {
        "type": "object",
        "required": ["layer"],
        "additionalProperties": False,
        "properties": {
            "layer": {"description": "Name of the layer whose output this output is.", "type": "string"},
            "loss": LOSS_SCHEMA,
            "metrics": {key: value for key, value in METRICS_SCHEMA.items() if key != "default"},
        },
    },
    "examples": [
        {
            "digit": {"layer": "digit", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
            "parity": {"layer": "parity", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
        }
    ],
}

#: ``compile.loss_weights``: Keras' loss_weights, by output name.
LOSS_WEIGHTS_SCHEMA = {
    "description": "Keras' loss_weights: output name (model.outputs) -> the weight of its loss in the total "
    "loss that training minimises; outputs left out weigh 1.",
    "type": "object",
    "additionalProperties": {"type": "number", "minimum": 0},
    "examples": [{"digit": 1.0, "parity": 0.5}],
}


def build_schema() -> dict:
    """Assemble the full schema from the registry and the section owners."""
    layer_item = _layer_item(REGISTRY, "layers")
    inferred = [name for name, source in SOURCES.items() if source.tells_input_shape]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "specforge.schema.json",
        "title": "specforge model spec",
        "description": "A model as data: where the data comes from, the layers, the compile options and the "
        "fit settings. Names follow Keras.",
        "type": "object",
        "required": ["version", "name", "model", "compile"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {
                    "anyOf": [
                        {
                            "properties": {
                                "data": {"properties": {"source": {"enum": inferred}}, "required": ["source"]}
                            },
                            "required": ["data"],
                        },
                        {"properties": {"model": {"required": ["inputs"]}}, "required": ["model"]},
                    ]
                },
                "else": {
                    "properties": {
                        "model": {
                            "description": "model.input_shape is required unless the "
                            f"data source is {' or '.join(inferred)}.",
                            "required": ["input_shape"],
                        }
                    }
                },
            },
            {
                "if": {"properties": {"model": {"required": ["outputs"]}}, "required": ["model"]},
                "else": {
                    "properties": {
                        "compile": {
                            "description": "compile.loss is required unless model.outputs gives each output its own.",
                            "required": ["loss"],
                        }
                    }
                },
            },
        ],
        "properties": {
            "$schema": {"type": "string", "description": "Path or URL of this schema, for editors (JSON specs)."},
            "version": {
                "description": f"Spec format version. {SPEC_VERSION} is the current one; later releases "
                "upgrade older versions instead of rejecting them.",
                "const": SPEC_VERSION,
                "examples": [SPEC_VERSION],
            },
            "name": {
                "description": "Model name: used for the run directory (runs/NAME/) and the ONNX metadata.",
                "type": "string",
                "pattern": NAME_PATTERN,
                "examples": ["mnist-cnn"],
            },
            "description": {"description": "Free text about the model.", "type": "string", "default": ""},
            "data": {**DATA_SCHEMA, "default": {"source": "mnist"}},
            "blocks": {
                "description": "Named, parameterised groups of layers, used in model.layers (or in another "
                "block) as `- block: NAME` with arguments for their parameters.",
                "type": "object",
                "propertyNames": {"pattern": LAYER_NAME_PATTERN},
                "additionalProperties": {"$ref": "#/definitions/block"},
            },
            "model": {
                "description": "The network: the input shape and the layers. Layers run in order, each taking the "
                "output of the one before it unless its `inputs` name others, so a plain list "
                "is a Keras Sequential and named inputs make any directed acyclic graph; "
                "`inputs` and `outputs` name several model inputs and outputs (Keras' functional "
                "API), one input and one output otherwise.",
                "type": "object",
                "required": ["layers"],
                "additionalProperties": False,
                "properties": {
                    "input_shape": {
                        "description": "Shape of one example without the batch axis, channels last: "
                        "[height, width, channels] for images, [features] for vectors. Required, "
                        "except for data source table: there it is the features' encoded width "
                        "(which depends on the categories in the training split), inferred from "
                        "the data when left out.",
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1},
                        "minItems": 1,
                        "maxItems": 3,
                        "examples": [[28, 28, 1], [784]],
                    },
                    "layers": {
                        "description": "The layers; each takes the previous one's output unless its `inputs` "
                        "name other layers (`input`: the model's input).",
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "if": {"required": ["block"]},
                            "then": {"$ref": "#/definitions/block_use"},
                            "else": layer_item,
                        },
                    },
                    "output": {
                        "description": "Name of the layer whose output is the model's output. Default: the "
                        "last layer. Layers the output does not depend on are checked like the "
                        "others, then left out, with a warning.",
                        "type": "string",
                    },
                    "inputs": INPUTS_SCHEMA,
                    "outputs": OUTPUTS_SCHEMA,
                },
            },
            "compile": {
                "description": "What to minimise and how (Keras' model.compile). loss is required unless "
                "model.outputs gives each output its own.",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "optimizer": {**OPTIMIZER_SCHEMA, "default": OPTIMIZER_SCHEMA.get("default", "rmsprop")},
                    "loss": LOSS_SCHEMA,
                    "metrics": METRICS_SCHEMA,
                    "loss_weights": LOSS_WEIGHTS_SCHEMA,
                },
            },
            "fit": {
                "description": "How to train (Keras' model.fit).",
                "type": "object",
                "additionalProperties": False,
                "default": {},
                "properties": {
                    "epochs": {
                        "description": "Passes over the training data.",
                        "type": "integer",
                        "minimum": 1,
                        "default": 1,
                    },
                    "batch_size": {
                        "description": "Examples per gradient step.",
                        "type": "integer",
                        "minimum": 1,
                        "default": 32,
                    },
                    "validation": {
                        "description": "Data evaluated after each epoch: `test` (the test split, as the "
                        "tutorial's validation_data), `validation` (the data's own validation "
                        "files), a fraction in (0, 1) held out from the end of the training "
                        "set (Keras' validation_split), or `none`.",
                        "oneOf": [
                            {"enum": ["test", "validation", "none"]},
                            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                        ],
                        "default": "none",
                    },
                    "shuffle": {
                        "description": "Shuffle the training data before each epoch.",
                        "type": "boolean",
                        "default": True,
                    },
                    "seed": {
                        "description": "Seed of every random choice (initial weights, shuffling, dropout): "
                        "the same spec and seed give bit-identical results.",
                        "type": "integer",
                        "minimum": 0,
                        "default": 0,
                    },
                    "callbacks": CALLBACKS_SCHEMA,
                    "class_weight": CLASS_WEIGHT_SCHEMA,
                    "log": {
                        "description": "Records written besides history.csv/json: tensorboard (event files in "
                        "RUN/tensorboard/ for `tensorboard --logdir runs`: the loss and metrics "
                        "per epoch and every log_every batches, the resolved spec as text, the "
                        "hyperparameters; needs specforge[tensorboard]).",
                        "type": "array",
                        "items": {"enum": ["tensorboard"]},
                        "uniqueItems": True,
                        "default": [],
                        "examples": [["tensorboard"]],
                    },
                    "log_every": {
                        "description": "Batches between two batch-level values in the logs of fit.log "
                        "(0: per epoch only).",
                        "type": "integer",
                        "minimum": 0,
                        "default": 100,
                    },
                    "backend": {
                        "description": "What trains the model: numpy (specforge's own math, the reference, "
                        "on this machine's CPU), torch (the graph lowered to PyTorch, on a "
                        "CPU or a CUDA GPU: train --device; needs specforge[torch]) or ray "
                        "(PyTorch data-parallel on a Ray cluster: train --workers and "
                        "--address; needs specforge[torch,ray]). The run directory is the "
                        "same whichever trains it; train --backend overrides this.",
                        "enum": ["numpy", "torch", "ray"],
                        "default": "numpy",
                    },
                },
            },
            "sweep": SWEEP_SCHEMA,
        },
        "definitions": {
            "layers": {kind: cls.json_schema() for kind, cls in REGISTRY.items()},
            "block_layers": {kind: _with_parameters(cls.json_schema()) for kind, cls in REGISTRY.items()},
            "block": _block_schema(REGISTRY),
            "block_use": _block_use_schema(LAYER_NAME_PATTERN),
            "parameter": {
                "type": "string",
                "pattern": "^\\$[A-Za-z_][A-Za-z0-9_]*$",
                "description": "A parameter of the block (`$filters`), replaced by the argument "
                "given where the block is used.",
            },
        },
    }


def _layer_item(kinds: Collection[str], definitions: str) -> dict:
    """One layer: ``type`` picks the kind, whose definition (under ``definitions``) has its options."""
    return {
        "type": "object",
        "description": "One layer. `type` picks the kind; the other keys are that kind's options (Keras names).",
        "required": ["type"],
        "properties": {"type": {"description": "The layer kind.", "enum": list(kinds)}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
                "then": {"$ref": f"#/definitions/{definitions}/{kind}"},
            }
            for kind in kinds
        ],
    }


def _with_parameters(layer: dict) -> dict:
    """A layer kind's schema inside a block: every option may also be a `$parameter`."""
    fixed = ("type", "name", "inputs")
    properties = {
        key: prop
        if key in fixed
        else {"description": prop.get("description", ""), "anyOf": [prop, {"$ref": "#/definitions/parameter"}]}
        for key, prop in layer["properties"].items()
    }
    return {**layer, "properties": properties, "examples": []}


def _block_use_schema(name_pattern: str) -> dict:
    """A use of a block: its name, the usual name and inputs, how many copies, and the arguments."""
    return {
        "type": "object",
        "description": "A use of a block defined under `blocks`: its layers, with the arguments (the other keys) put "
        "in for its parameters; `repeat` copies run one after the other.",
        "required": ["block"],
        "properties": {
            "block": {"type": "string", "description": "Name of the block (a key of `blocks`)."},
            "name": {
                "type": "string",
                "pattern": name_pattern,
                "description": "Name of the use; its layers are named NAME/LAYER. Default: the block's name with "
                "a counter (residual, residual_1, ...); each repeated copy takes the next one.",
            },
            "inputs": {
                "description": "The layer whose output the block takes (one); default: the layer before it.",
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
            },
            "repeat": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "How many copies of the block, each taking the previous one's output.",
            },
        },
        "additionalProperties": {"description": "An argument: a value for the block's parameter of that name."},
        "examples": [{"block": "residual", "filters": 64, "strides": 2}],
    }


def _block_schema(kinds: Collection[str]) -> dict:
    """A block's definition: its parameters and its layers."""
    return {
        "type": "object",
        "description": "A named group of layers. Inside it `input` is the block's input; its output is its last "
        "layer's unless `output` names another. Options written `$NAME` take the parameter NAME.",
        "required": ["layers"],
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string", "description": "What the block is.", "default": ""},
            "params": {
                "description": "The block's parameters, each a JSON Schema type with an optional default; a "
                "parameter without a default must be given where the block is used.",
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "additionalProperties": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {
                            "enum": ["integer", "number", "string", "boolean", "array"],
                            "description": "The kind of value the parameter takes.",
                        },
                        "default": {"description": "The value when a use leaves the parameter out."},
                        "minimum": {"type": "number", "description": "The smallest value a number may take."},
                        "enum": {"type": "array", "description": "The values the parameter may take."},
                        "description": {"type": "string", "description": "What the parameter does."},
                    },
                },
                "default": {},
            },
            "layers": {
                "description": "The block's layers, as in model.layers (a layer or another block's use).",
                "type": "array",
                "minItems": 1,
                "items": {
                    "if": {"required": ["block"]},
                    "then": {"$ref": "#/definitions/block_use"},
                    "else": _layer_item(kinds, "block_layers"),
                },
            },
            "output": {
                "type": "string",
                "description": "Name of the layer whose output is the block's output. Default: the last layer.",
            },
        },
    }


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """The installed schema file (fast: no registry import needed to read it)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_text(schema: dict) -> str:
    return json.dumps(schema, indent=2) + "\n"


#: Where ``specforge init`` and ``specforge schema --write`` put the schema, relative to a spec's directory.
SCHEMA_NAME = "specforge.schema.json"


def write_schema_copy(directory: Path) -> Path:
    """Copy the installed schema to ``directory/specforge.schema.json`` (unless it is already that file), so
    that specs can name it by a relative path that survives reinstalling or moving the package."""
    target = Path(directory) / SCHEMA_NAME
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    if not (target.is_file() and target.read_text(encoding="utf-8") == text):
        write_text(target, text)
    return target
