"""FNO size presets spanning the transfer study's range (about 64K to 268M parameters).

The parameter count is dominated by the spectral weights, ``layers * 2 * modes^2 * width^2``
complex numbers; presets double ``width`` or ``modes`` to step by about 4x.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax

from scifm._checks import UserError
from scifm.models._fno import FNO, count_parameters


@dataclass(frozen=True)
class FNOPreset:
    """Hyper-parameters of a preset FNO."""

    name: str
    width: int
    modes: int
    layers: int = 4

    def build(self, in_channels: int = 7, out_channels: int = 1, *, key) -> FNO:
        """The initialised model (built in one compiled call: eager init compiles per weight)."""
        return _build(in_channels, out_channels, self.width, self.modes, self.layers, key)

    def parameters(self, in_channels: int = 7, out_channels: int = 1) -> int:
        """Exact parameter count, without allocating the weights."""
        shapes = jax.eval_shape(
            lambda: self.build(in_channels, out_channels, key=jax.random.key(0))
        )
        return count_parameters(shapes)


@eqx.filter_jit
def _build(in_channels: int, out_channels: int, width: int, modes: int, layers: int, key) -> FNO:
    # module-level, so repeated builds of one shape (a sweep's scratch runs) compile once
    return FNO(in_channels, out_channels, width, modes, layers=layers, key=key)


PRESETS: dict[str, FNOPreset] = {
    p.name: p
    for p in (
        FNOPreset("fno-64k", width=16, modes=4),
        FNOPreset("fno-1m", width=32, modes=8),
        FNOPreset("fno-4m", width=32, modes=16),
        FNOPreset("fno-16m", width=64, modes=16),
        FNOPreset("fno-67m", width=64, modes=32),
        FNOPreset("fno-268m", width=128, modes=32),
    )
}


def get_preset(name: str) -> FNOPreset:
    """The preset called ``name``; unknown names list the valid ones."""
    if name not in PRESETS:
        raise UserError(f"unknown model preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]
