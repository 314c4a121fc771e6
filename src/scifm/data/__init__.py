"""Datasets: generation into HDF5 (chunked, atomic, resumable), lazy reading, training batches.

``FieldSet``, ``Normalizer`` and ``epoch_batches`` (training side, JAX) load on first use, so
generating and inspecting data does not start the JAX runtime.
"""

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


_TRAINING = ("FieldSet", "Normalizer", "epoch_batches")


def __getattr__(name: str):
    if name in _TRAINING:
        from scifm.data import _batches

        return getattr(_batches, name)
    raise AttributeError(f"module 'scifm.data' has no attribute {name!r}")
