"""Datasets: generation into HDF5 (chunked, atomic, resumable) and lazy reading."""

from scifm.data._batches import FieldSet, Normalizer, epoch_batches
from scifm.data._inspect import plot_samples, summary
from scifm.data._reader import PDEDataset, model_inputs, open  # noqa: A004
from scifm.data._schema import FORMAT, FORMAT_VERSION
from scifm.data._writer import generate

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FieldSet",
    "Normalizer",
    "PDEDataset",
    "epoch_batches",
    "generate",
    "model_inputs",
    "open",
    "plot_samples",
    "summary",
]
