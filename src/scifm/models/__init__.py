"""Models: Fourier neural operators (with size presets, the input normaliser and the adapter to
other channels) and the PINN MLP."""

from ._adapter import adapt as adapt
from ._adapter import adapter_changes as adapter_changes
from ._fno import FNO as FNO
from ._fno import Pointwise as Pointwise
from ._fno import SpectralConv2d as SpectralConv2d
from ._fno import count_parameters as count_parameters
from ._mlp import MLP as MLP
from ._normalizer import Normalizer as Normalizer
from ._operator import OperatorModel as OperatorModel
from ._presets import PRESETS as PRESETS
from ._presets import FNOPreset as FNOPreset
from ._presets import get_preset as get_preset
from ._pretrained import Pretrained as Pretrained
from ._pretrained import get_pretrained as get_pretrained
from ._pretrained import pretrained_models as pretrained_models
from ._pretrained import resolve_init as resolve_init

__all__ = [
    "FNO",
    "MLP",
    "Normalizer",
    "PRESETS",
    "FNOPreset",
    "OperatorModel",
    "Pointwise",
    "Pretrained",
    "SpectralConv2d",
    "adapt",
    "adapter_changes",
    "count_parameters",
    "get_preset",
    "get_pretrained",
    "pretrained_models",
    "resolve_init",
]
