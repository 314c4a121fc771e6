"""The base of the lazy field views readers return (``inputs``, ``outputs``): read on indexing."""

from __future__ import annotations

import numpy as np


class LazySamples:
    """Fields (N, C, H, W) read when indexed by sample: an int, a slice or an index array.

    Subclasses set ``shape`` and ``dtype`` and implement :meth:`read`.
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, tuple):
            raise IndexError("index samples only, e.g. data.inputs[10:20]")
        return self.read(index)

    def read(self, index) -> np.ndarray:
        """The samples at ``index`` (an int: one sample (C, H, W))."""
        raise NotImplementedError
