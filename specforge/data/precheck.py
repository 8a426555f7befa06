"""The data checks of ``specforge validate``: what a spec's data files say without reading the data set whole
(files exist; example shapes from IDX and .npy headers and CSV column counts; labels where they are small;
class folders against the output units; the validation split fit.validation names)."""

from __future__ import annotations

from pathlib import Path

from specforge.base.errors import DataError
from specforge.data.dataset import (
    check_fits,
    check_labels,
    declared_num_classes,
    missing_split,
    shape_setting,
)
from specforge.data.feed import examples_shape
from specforge.data.sources import create as create_source


def check_data(config: dict, base_dir: Path, output_units: int) -> None:
    """Raise DataError (naming the spec setting involved) for data that training would refuse."""
    data = config["data"]
    probes = create_source(data.get("source", "mnist")).probe(data, Path(base_dir))
    if probes is None:
        return
    input_shape = examples_shape(config)
    declared = declared_num_classes(data)
    classes, counted_by = (declared, "data.num_classes") if declared is not None else (output_units, "model.layers")
    validation = config["fit"]["validation"]
    if validation in ("test", "validation") and validation not in probes:
        raise missing_split(validation)
    for name, probe in probes.items():
        if probe.image_shape is not None:
            check_fits(name, probe.image_shape, input_shape, probe.file, shape_setting(data))
        if probe.labels is not None:
            check_labels(name, probe.labels, classes, probe.labels_file, counted_by)
        if probe.classes is not None and len(probe.classes) > classes:
            raise DataError(
                f"{len(probe.classes)} class folders for {classes} output units; give the last layer "
                f"{len(probe.classes)} units or remove folders",
                file=probe.file,
                setting=counted_by,
            )
