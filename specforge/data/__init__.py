"""Data: the embedded MNIST set and users' own files, checked, split and turned into batches.

The spec's ``data`` section (schema: ``specforge.data.schema.DATA_SCHEMA``, generated from the
registry ``specforge.data.sources.SOURCES``) names a source (``mnist``, ``idx``, ``npz``, ``npy``,
``csv``, ``image_folder``, ``url``, ``table``), its files, the preprocessing and the classes.  The API:

``declared_num_classes(data_spec) -> int | None``
    The classes the spec states or implies (10 for mnist) without reading any file; for
    validation.  None when only the data can tell.

``load_dataset(data_spec, input_shape, *, validation="test", base_dir) -> Dataset``
    Reads and checks the data.  ``validation`` is the spec's ``fit.validation``: ``"test"``
    (the test split, as the seed's ``validation_data=(X_test, y_test)``), a fraction
    ``0 < f < 1`` (the last fraction of the training set, as Keras' ``validation_split``),
    ``"validation"`` (the source's own validation files) or ``"none"``.  Relative paths
    are taken from ``base_dir``, the spec file's directory.
    ``Dataset.train``, ``.validation``, ``.test`` are ``Split(images, labels)`` or None:
    images as stored (uint8 for every image format), ``(N, H, W[, C])``; labels int64 ``(N,)``.
    ``Dataset.preprocessing``, ``.class_names``, ``.num_classes``, ``.source_hash``.

``Preprocessing``
    The exact steps (input_shape, rescale, mean, std, label encoding, classes).
    ``to_dict()`` / ``Preprocessing.from_dict(d)`` store it in a run; ``images(batch)`` gives
    float32 ``(B, *input_shape)``; ``labels(batch)`` one-hot float32 or int64;
    ``scale_and_offset`` the same steps as ``x * a + b`` for an exporter.

``load_data(config, base_dir, limits) -> Dataset``
    The data of a resolved spec's ``config``, split as its ``fit.validation`` says and cut to
    ``limits`` (``{"train": n, "test": n}``, None for all).

``iterate_batches(split, batch_size, *, shuffle, rng, preprocessing=None)``
    One epoch of preprocessed ``(x, y)`` batches; the order is one ``rng.permutation`` drawn
    per call.  ``batch_count(split, batch_size)`` is the number of batches.

``data_info(dataset) -> dict`` and ``render_grid(split, class_names, path, count=25) -> Path``
    Statistics of each split, and a PNG grid of sample images with their labels.

``read_image(path, input_shape) -> np.ndarray``
    One PNG/JPEG file as uint8 of ``input_shape``, converted as image folders are.

Every problem with the data is a ``DataError`` naming the file, what is wrong and what would work.
"""

from specforge.data.batches import batch_count, iterate_batches
from specforge.data.dataset import Dataset, declared_num_classes, load_dataset
from specforge.data.image_decode import read_image
from specforge.data.info import data_info, render_grid
from specforge.data.loading import limit_dataset, load_data
from specforge.data.preprocessing import Preprocessing
from specforge.data.schema import DATA_SCHEMA
from specforge.data.splits import Split

__all__ = [
    "DATA_SCHEMA",
    "Dataset",
    "Preprocessing",
    "Split",
    "batch_count",
    "data_info",
    "declared_num_classes",
    "iterate_batches",
    "limit_dataset",
    "load_data",
    "load_dataset",
    "read_image",
    "render_grid",
]
