"""Datasets: generation into HDF5 (chunked, atomic, resumable), lazy reading, training batches.

NumPy and h5py only: generating and inspecting data does not start the JAX runtime.
"""

from scifm.data._batches import FieldSet as FieldSet
from scifm.data._batches import epoch_batches as epoch_batches
from scifm.data._inspect import plot_samples as plot_samples
from scifm.data._inspect import summary as summary
from scifm.data._reader import PDEDataset as PDEDataset
from scifm.data._reader import model_inputs as model_inputs
from scifm.data._reader import open as open  # noqa: A004
from scifm.data._schema import FORMAT as FORMAT
from scifm.data._schema import FORMAT_VERSION as FORMAT_VERSION
from scifm.data._schema import INPUT_NAMES as INPUT_NAMES
from scifm.data._schema import OUTPUT_NAMES as OUTPUT_NAMES
from scifm.data._schema import Layout as Layout
from scifm.data._writer import default_workers as default_workers
from scifm.data._writer import generate as generate

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FieldSet",
    "INPUT_NAMES",
    "Layout",
    "OUTPUT_NAMES",
    "PDEDataset",
    "default_workers",
    "epoch_batches",
    "generate",
    "model_inputs",
    "open",
    "plot_samples",
    "summary",
]
