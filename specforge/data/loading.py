"""The data of a resolved spec, split as ``fit.validation`` says and cut to the run's example limits."""

from __future__ import annotations

from pathlib import Path
from typing import overload

from specforge.data.dataset import Dataset, load_dataset
from specforge.data.feed import examples_shape
from specforge.data.preprocessing import Preprocessing
from specforge.data.splits import Split


def limit_dataset(dataset: Dataset, limit_train: int | None, limit_test: int | None) -> Dataset:
    """The first ``limit_train`` training examples and the first ``limit_test`` of the test and validation splits."""
    return Dataset(
        _first(dataset.train, limit_train),
        _first(dataset.validation, limit_test),
        _first(dataset.test, limit_test),
        dataset.preprocessing,
        dataset.source_hash,
        dataset.digests,
    )


@overload
def _first(split: Split, limit: int | None) -> Split: ...
@overload
def _first(split: Split | None, limit: int | None) -> Split | None: ...
def _first(split: Split | None, limit: int | None) -> Split | None:
    return split if split is None or limit is None else split.part(split.name, None, limit)


def load_data(
    config: dict,
    base_dir: Path,
    limits: dict[str, int | None],
    input_dtype: str = "float32",
    fitted: Preprocessing | None = None,
) -> Dataset:
    """The data of a resolved spec ``config``, split as ``fit.validation`` says, cut to ``limits`` (train, test),
    for a model input of ``input_dtype`` (``Graph.input_dtype``); text vectorized with a run's ``fitted``
    vocabulary when given."""
    dataset = load_dataset(
        config["data"],
        examples_shape(config),
        validation=config["fit"]["validation"],
        base_dir=base_dir,
        input_dtype=input_dtype,
        fitted=fitted,
    )
    return limit_dataset(dataset, limits.get("train"), limits.get("test"))


__all__ = ["limit_dataset", "load_data"]
