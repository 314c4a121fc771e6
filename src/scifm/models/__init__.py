"""Models: Fourier neural operators (with size presets) and the PINN MLP."""

from ._fno import FNO, Pointwise, SpectralConv2d, count_parameters
from ._mlp import MLP as MLP
from ._operator import OperatorModel
from ._presets import PRESETS, FNOPreset, get_preset

__all__ = [
    "FNO",
    "MLP",
    "PRESETS",
    "FNOPreset",
    "OperatorModel",
    "Pointwise",
    "SpectralConv2d",
    "count_parameters",
    "get_preset",
]
