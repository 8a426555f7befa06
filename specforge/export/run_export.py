"""A trained run -> ``model.onnx``: build, check parity on the run's data, add metadata, write atomically.

Nothing is written unless the parity gate passes; the gate's result is stored in the
run (``export.json``) beside the file's path, hash and interface.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specforge.base.errors import DataError, ExportError
from specforge.base.fileio import write_bytes
from specforge.data import load_dataset
from specforge.data.feed import examples_shape, make_feed
from specforge.data.preprocessing import Preprocessing
from specforge.data.table.read import join_tables
from specforge.export.metadata import (
    attach_metadata,
    build_metadata,
    table_metadata,
    text_metadata,
)
from specforge.export.onnx import DEFAULT_OPSET, IR_VERSIONS, export_graph
from specforge.export.parity import MIN_EXAMPLES, ParityResult, check_parity
from specforge.export.quantize import (
    CALIBRATION_EXAMPLES,
    DEFAULT_MAX_ACCURACY_DROP,
    quantize_gated,
)
from specforge.export.web import page_mode, write_site
from specforge.runs.directory import display_path, open_run, write_json
from specforge.spec.model_io import output_class_names, output_label_maps

if TYPE_CHECKING:
    import onnx

    from specforge.data.preprocessing import Preprocessing
    from specforge.data.table.features import TablePipeline
    from specforge.data.table.read import Table
    from specforge.export.quantize import QuantizationResult
    from specforge.graph.dag import Graph
    from specforge.layers.base import Params
    from specforge.spec import Spec

MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model.int8.onnx"
EXPORT_RECORD = "export.json"


@dataclass
class ExportResult:
    """A written ONNX file and how it was checked."""

    path: Path
    parity: ParityResult
    opset: int
    ir_version: int
    outputs: list[str]
    preprocessing_in_graph: bool
    size: int
    sha256: str
    #: the static site written by ``--web``, when asked for
    site: Path | None = None
    #: the int8 gate's result (``--quantize int8``)
    quantization: QuantizationResult | None = None

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "path": str(self.path),
            "parity": self.parity.to_dict(),
            "site": None if self.site is None else str(self.site),
            "quantization": None if self.quantization is None else self.quantization.to_dict(),
        }


def export_classifier(
    graph: Graph,
    params: Sequence[Params],
    preprocessing: Preprocessing,
    raw: np.ndarray,
    *,
    spec_name: str,
    spec_sha256: str,
    metrics: dict | None = None,
    opset: int = DEFAULT_OPSET,
    logits: bool = False,
    in_graph: bool = True,
    data: str = "",
    description: str = "",
    outputs_metadata: dict[str, str] | None = None,
) -> tuple[onnx.ModelProto, ParityResult]:
    """The checked, documented ONNX model of a classifier, and its parity result.

    ``raw`` is the parity batch as stored (at least ``MIN_EXAMPLES`` examples where the data
    has them); ``outputs_metadata`` describes the outputs of a model of several (``outputs_metadata``).
    Raises ExportError when a layer cannot be converted or the gate fails.
    """
    outputs = (
        [("probabilities", graph.output_shape)]
        if len(graph.output_nodes) == 1
        else [(name, graph.nodes[node].output_shape) for name, node in zip(graph.output_names, graph.output_nodes)]
    )
    described = "; ".join(f"output '{name}' [N, {', '.join(map(str, shape))}]" for name, shape in outputs)
    doc = (
        f"{_doc_title(spec_name, description)} Input 'input' [N, "
        f"{', '.join(map(str, graph.input_shape))}] {graph.input_dtype} NHWC; {described}. "
        "See metadata_props for classes and preprocessing."
    )
    model = export_graph(
        graph, params, opset=opset, logits=logits, preprocessing=preprocessing if in_graph else None, doc=doc
    )
    parity = check_parity(graph, params, model, raw, preprocessing, in_graph=in_graph, opset=opset, data=data)
    if not parity.passed:
        raise ExportError(parity.failure())
    attach_metadata(
        model,
        build_metadata(
            spec_name=spec_name,
            spec_sha256=spec_sha256,
            parameters=graph.total_params,
            preprocessing=preprocessing,
            in_graph=in_graph,
            input_shape=graph.input_shape,
            outputs=[output.name for output in model.graph.output],
            raw=raw,
            metrics=metrics,
        )
        | (outputs_metadata or {}),
    )
    return model, parity


def _doc_title(spec_name: str, description: str) -> str:
    """The doc string's first sentence: the spec's name and description, ended by one full stop."""
    title = f"{spec_name}{f': {description}' if description else ''}".rstrip()
    return title if title.endswith((".", "!", "?")) else title + "."


def export_run(
    run_path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    logits: bool = False,
    preprocessing: bool = True,
    output: str | Path | None = None,
    web: str | Path | None = None,
    quantize: str | None = None,
    max_accuracy_drop: float | None = None,
) -> ExportResult:
    """``specforge export RUN --onnx``: write RUN/model.onnx (or ``output``) and RUN/export.json; with ``web``,
    also the static site that runs the model in a browser (checked to be possible before anything is written).

    ``quantize="int8"`` writes the int8 model instead (RUN/model.int8.onnx unless ``output``), once it keeps
    the float model's test accuracy within ``max_accuracy_drop`` points (default 0.5)."""
    run = open_run(run_path)
    spec = run.spec()
    graph = run.graph
    outputs = len(graph.output_nodes)
    several = outputs > 1
    steps = Preprocessing.from_dict(run.preprocessing)
    if web is not None:
        try:
            mode = page_mode(
                graph.input_shape, preprocessing, run=display_path(run.path), text=steps.vectorizer is not None
            )
        except ExportError as error:
            raise spec.located(error) from None
    base_dir = Path(run.manifest.get("base_dir", spec.base_dir))
    common = {
        "spec_name": spec.name,
        "spec_sha256": run.manifest.get("spec_sha256", spec.sha256()),
        "metrics": run.metrics,
        "opset": opset,
        "description": run.config.get("description", ""),
    }
    quantization = None
    vectorizer = steps.vectorizer
    text = vectorizer is not None and preprocessing
    if vectorizer is not None and text:
        from specforge.export.text import TEXT_OPSET, check_expressible

        try:
            check_expressible(vectorizer)
        except ExportError as error:
            raise spec.located(error) from None
        if quantize is not None:
            raise ExportError(
                "a text model taking raw documents is exported in float; leave out --quantize (or give "
                "--no-preprocessing to quantize the model of token ids)"
            )
        opset = common["opset"] = max(opset, TEXT_OPSET)
    if steps.pipeline is not None:
        if logits or not preprocessing or quantize is not None:
            raise ExportError(
                "a table model takes raw rows with its preprocessing in the graph, in float; leave "
                "out --logits, --no-preprocessing and --quantize"
            )
        if steps.pipeline.text_features:
            opset = common["opset"] = max(opset, _table_text_opset(spec, steps.pipeline))
        rows, data = parity_rows(run.config, examples_shape(run.config), base_dir)
        model, parity = export_table(
            graph,
            run.weights(),
            steps,
            rows,
            data=data,
            groups=run.config["data"].get("inputs"),
            outputs_metadata=outputs_metadata(run.config, graph, steps) if several else None,
            **common,
        )
    elif text:
        texts, data = parity_texts(run.config, graph.input_shape, base_dir, steps)
        model, parity = export_text(graph, run.weights(), steps, texts, logits=logits, data=data, **common)
    else:
        raw, data = parity_batch(run.config, graph.input_shape, base_dir, steps)
        model, parity = export_classifier(
            graph,
            run.weights(),
            steps,
            raw,
            logits=logits,
            in_graph=preprocessing,
            data=data,
            outputs_metadata=outputs_metadata(run.config, graph, steps) if several else None,
            **common,
        )
    if quantize is not None:
        calibration, test_inputs, test_labels = quantization_data(
            run.config, graph.input_shape, base_dir, steps, preprocessing
        )
        model, quantization = quantize_gated(
            model,
            calibration,
            test_inputs,
            per_output_labels(run.config, test_labels) if several else test_labels,
            max_accuracy_drop=(DEFAULT_MAX_ACCURACY_DROP if max_accuracy_drop is None else max_accuracy_drop),
            file=str(run.path),
        )
    payload = model.SerializeToString()
    path = Path(output) if output is not None else run.path / (INT8_MODEL_FILE if quantize else MODEL_FILE)
    write_bytes(path, payload)
    if web is not None:
        web = write_site(
            web,
            payload,
            name=spec.name,
            class_names=steps.class_names,
            input_shape=graph.input_shape,
            mode=mode,
            outputs=output_class_names(run.config, graph.output_widths, steps.class_names) if several else None,
        )
    result = ExportResult(
        path,
        parity,
        opset,
        IR_VERSIONS[opset],
        [output.name for output in model.graph.output],
        preprocessing,
        len(payload),
        hashlib.sha256(payload).hexdigest(),
        web,
        quantization,
    )
    write_json(run.path / EXPORT_RECORD, result.to_dict())
    return result


def _table_text_opset(spec: Spec, pipeline: TablePipeline) -> int:
    """The opset a table's text columns need, their vectorizations in the graph; a located ExportError for one
    standard operators cannot compute."""
    from specforge.export.text import TEXT_OPSET, check_expressible

    for index, feature in enumerate(pipeline.features):
        if feature.vectorizer is not None:
            try:
                check_expressible(feature.vectorizer, f"data.features[{index}].vectorize")
            except ExportError as error:
                raise spec.located(error) from None
    return TEXT_OPSET


def export_table(
    graph: Graph,
    params: Sequence[Params],
    preprocessing: Preprocessing,
    rows: Table,
    *,
    spec_name: str,
    spec_sha256: str,
    metrics: dict | None = None,
    opset: int = DEFAULT_OPSET,
    data: str = "",
    description: str = "",
    groups: dict[str, list[str]] | None = None,
    outputs_metadata: dict[str, str] | None = None,
) -> tuple[onnx.ModelProto, ParityResult]:
    """The checked, documented ONNX model of a table model, taking raw rows, and its parity on ``rows``;
    ``groups`` (``data.inputs``) are the feature columns of each named model input, ``outputs_metadata`` the
    outputs of a model of several (``outputs_metadata``)."""
    from specforge.export.table import check_table_parity, input_infos, table_model

    pipeline = preprocessing.pipeline
    if pipeline is None:
        raise ValueError("export_table takes a table model's preprocessing, which holds its table pipeline")
    named = (
        [("predictions" if pipeline.target.regression else "probabilities")]
        if len(graph.output_nodes) == 1
        else graph.output_names
    )
    doc = (
        f"{_doc_title(spec_name, description)} One input per feature column, [N, 1] "
        "(float for numeric columns, string for categorical, binary and text ones; an image column's raw 0-255 "
        "pixels, [N, height, width, channels]); "
        f"output{'s' if len(named) > 1 else ''} {', '.join(repr(name) for name in named)}. Preprocessing is in the graph."
    )
    network = export_graph(graph, params, opset=opset)
    model = table_model(network, pipeline, doc, groups)
    parity = check_table_parity(graph, params, model, pipeline, rows, data, make_feed({"inputs": groups}, pipeline))
    if not parity.passed:
        raise ExportError(parity.failure())
    attach_metadata(
        model,
        table_metadata(
            spec_name=spec_name,
            spec_sha256=spec_sha256,
            parameters=graph.total_params,
            preprocessing=preprocessing,
            inputs=input_infos(pipeline),
            outputs=[output.name for output in model.graph.output],
            metrics=metrics,
        )
        | (outputs_metadata or {}),
    )
    return model, parity


def export_text(
    graph: Graph,
    params: Sequence[Params],
    preprocessing: Preprocessing,
    texts: list[str],
    *,
    spec_name: str,
    spec_sha256: str,
    metrics: dict | None = None,
    opset: int,
    logits: bool = False,
    data: str = "",
    description: str = "",
) -> tuple[onnx.ModelProto, ParityResult]:
    """The checked, documented ONNX model of a text model taking raw documents (its vectorization, with the
    run's saved vocabulary, in the graph), and its parity on ``texts``."""
    from specforge.export.parity import check_text_parity
    from specforge.export.text import TEXT_INPUT, text_model

    vectorizer = preprocessing.vectorizer
    if vectorizer is None:
        raise ValueError("export_text takes a text model's preprocessing, which holds its vectorizer")
    doc = (
        f"{_doc_title(spec_name, description)} Input '{TEXT_INPUT}' [N] string: raw documents, standardized, "
        f"split and looked up in the graph; output 'probabilities' [N, {', '.join(map(str, graph.output_shape))}]. "
        "See metadata_props for classes and the vocabulary."
    )
    model = text_model(export_graph(graph, params, opset=opset, logits=logits, doc=doc), vectorizer)
    parity = check_text_parity(graph, params, model, vectorizer, texts, opset=opset, data=data)
    if not parity.passed:
        raise ExportError(parity.failure())
    attach_metadata(
        model,
        text_metadata(
            spec_name=spec_name,
            spec_sha256=spec_sha256,
            parameters=graph.total_params,
            preprocessing=preprocessing,
            input_name=TEXT_INPUT,
            outputs=[output.name for output in model.graph.output],
            metrics=metrics,
        ),
    )
    return model, parity


def parity_texts(
    config: dict, input_shape: tuple[int, ...], base_dir: Path, steps: Preprocessing, size: int = MIN_EXAMPLES
) -> tuple[list[str], str]:
    """The first ``size`` documents of a text spec's test split (then its training split), as written, and
    their description; the splits are vectorized with the run's saved vocabulary, not a relearned one."""
    dataset = load_dataset(config["data"], input_shape, validation="none", base_dir=base_dir, fitted=steps)
    texts: list[str] = []
    names: list[str] = []
    for split in (dataset.test, dataset.train):
        take = min(size - len(texts), len(split.texts or [])) if split is not None else 0
        if split is not None and take > 0:
            texts += (split.texts or [])[:take]
            names.append(f"{split.name}[0:{take}]")
    if not texts:
        raise DataError("the spec's data has no documents to check the export on")
    return texts, f"{config['data']['source']} {' + '.join(names)}"


def parity_rows(
    config: dict, input_shape: tuple[int, ...], base_dir: Path, size: int = MIN_EXAMPLES
) -> tuple[Table, str]:
    """The first ``size`` raw rows of a table spec's test split, then of its training split, and their description."""
    dataset = load_dataset(config["data"], input_shape, validation="none", base_dir=base_dir)
    parts: list[Table] = []
    names: list[str] = []
    for split in (dataset.test, dataset.train):
        if split is None or split.table is None:
            continue
        take = min(size - sum(len(part) for part in parts), len(split))
        if take > 0:
            parts.append(split.table.take(np.arange(take)))
            names.append(f"{split.name}[0:{take}]")
    return join_tables(parts), f"table {' + '.join(names)}"


def parity_batch(
    config: dict,
    input_shape: tuple[int, ...],
    base_dir: Path,
    steps: Preprocessing | None = None,
    size: int = MIN_EXAMPLES,
) -> tuple[np.ndarray, str]:
    """The first ``size`` examples of the spec's test split (then its training split when the test split
    is smaller), as stored (documents vectorized with the run's ``steps``), and a description such as
    ``mnist test[0:256]``."""
    dataset = load_dataset(config["data"], input_shape, validation="none", base_dir=base_dir, fitted=steps)
    parts: list[np.ndarray] = []
    names: list[str] = []
    for split in (dataset.test, dataset.train):
        if split is None or not len(split):
            continue
        take = min(size - sum(len(part) for part in parts), len(split))
        if take <= 0:
            break
        parts.append(np.asarray(split.images[:take]))
        names.append(f"{split.name}[0:{take}]")
    if not parts:
        raise DataError("the spec's data has no examples to check the export on")
    source = config["data"].get("source", "mnist")
    return np.concatenate(parts), f"{source} {' + '.join(names)}"


def quantization_data(
    config: dict, input_shape: tuple[int, ...], base_dir: Path, steps: Preprocessing, in_graph: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs to calibrate on (the first training examples), and the test split's inputs and labels."""
    dataset = load_dataset(config["data"], input_shape, validation="none", base_dir=base_dir, fitted=steps)
    if dataset.test is None or not len(dataset.test):
        raise DataError(
            "--quantize compares the int8 model with the float one on the test split, and the data "
            "has none; give the spec's data a test split"
        )

    def inputs(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        return (
            images.reshape((len(images), *input_shape)).astype(steps.input_dtype) if in_graph else steps.images(images)
        )

    return (
        inputs(dataset.train.images[:CALIBRATION_EXAMPLES]),
        inputs(dataset.test.images),
        np.asarray(dataset.test.labels),
    )


def per_output_labels(config: dict, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each output's labels, by its name, from the data's (mapped where ``data.targets`` maps them)."""
    return {
        name: labels if label_map is None else np.asarray(label_map)[labels]
        for name, label_map in output_label_maps(config).items()
    }


def outputs_metadata(config: dict, graph: Graph, preprocessing: Preprocessing) -> dict[str, str]:
    """The metadata of a model of several outputs: each output's class names and map from the data's labels."""
    return {
        "output_class_names": json.dumps(output_class_names(config, graph.output_widths, preprocessing.class_names)),
        "output_label_maps": json.dumps(output_label_maps(config)),
    }
