"""Models: Fourier neural operators (with size presets) and the PINN MLP."""

from ._fno import FNO, Pointwise, SpectralConv2d, count_parameters
from ._operator import OperatorModel
from ._presets import PRESETS, FNOPreset, get_preset

__all__ = [
    "FNO",
    "PRESETS",
    "FNOPreset",
    "OperatorModel",
    "Pointwise",
    "SpectralConv2d",
    "count_parameters",
    "get_preset",
]
