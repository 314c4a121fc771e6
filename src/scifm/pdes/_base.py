"""The interface every PDE system implements, and the batch pipeline that samples them.

A system says how to draw the physics of one sample and how those map to the six coefficients of
the general operator (see ``_spectral``); everything else — sources, normalisation, projection,
the exact solve — is shared. Randomness is per sample: sample ``i`` of seed ``s`` draws from its
own stream ``SeedSequence(s, spawn_key=(i,))``, so a dataset does not depend on chunk or batch
size, and the same seed at another resolution gives the same continuous problems.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np

from scifm._checks import UserError
from scifm.pdes import _spectral
from scifm.pdes._sources import GaussianBumps

MAX_ATTEMPTS = 1000
BLOCK = 16


class Samples(NamedTuple):
    """A batch of solved samples (float64)."""

    inputs: np.ndarray  # (B, C, H, H): input fields, input_names (the source f first)
    outputs: np.ndarray  # (B, 1, H, H): the solution u
    coefficients: np.ndarray  # (B, 6): COEFFICIENT_NAMES
    parameters: np.ndarray  # (B, Q): the system's physics parameters, parameter_names


def check_range(name: str, value: tuple[float, float], *, low: float, strict: bool) -> None:
    """Check ``low (<|<=) value[0] <= value[1]``; raise a one-line ValueError otherwise."""
    lo, hi = value
    ok_low = lo > low if strict else lo >= low
    if not (np.isfinite(lo) and np.isfinite(hi) and ok_low and lo <= hi):
        sign = "<" if strict else "<="
        raise UserError(f"{name} must satisfy {low:g} {sign} low <= high, got ({lo:g}, {hi:g})")


def check_resolution(resolution: int) -> None:
    if not (isinstance(resolution, int | np.integer) and resolution >= 16 and resolution % 2 == 0):
        raise UserError(f"resolution must be an even integer >= 16, got {resolution!r}")


def rotated_diffusion(e: np.ndarray, theta: np.ndarray, kappa: float) -> np.ndarray:
    """``kappa * R(-theta) diag(1, e) R(theta)`` as columns (k11, k22, k12), shape (B, 3)."""
    c, s = np.cos(theta), np.sin(theta)
    return kappa * np.stack([c**2 + e * s**2, s**2 + e * c**2, (e - 1) * s * c], axis=-1)


@dataclass(frozen=True)
class AbstractPDESystem(abc.ABC):
    """A family of steady 2-D problems ``L u = f`` on the periodic unit square.

    Subclasses set ``name``, ``parameter_names``, ``description`` and implement ``draw`` and
    ``coefficients``; they may override ``accept`` (reject and redraw a sample) and
    ``finalise_parameters`` (record realised values). A system with coefficient *fields*
    (``Darcy``) also sets ``input_names`` and ``equation`` and solves its own batches.
    """

    name: ClassVar[str]
    parameter_names: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    input_names: ClassVar[tuple[str, ...]] = ("f",)  # input channels; outputs are ("u",)
    equation: ClassVar[str] = _spectral.EQUATION
    source: GaussianBumps = field(default_factory=GaussianBumps)

    @abc.abstractmethod
    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Draw the physics parameters of one sample, shape (Q,)."""

    @abc.abstractmethod
    def coefficients(self, parameters: np.ndarray, f_hat: np.ndarray) -> np.ndarray:
        """Map parameters (B, Q) to operator coefficients (B, 6); ``f_hat`` is the source's rfft2."""

    def accept(self, u: np.ndarray) -> np.ndarray:
        """Which solutions (B, H, H) to keep; rejected samples are redrawn from their own stream."""
        return np.ones(u.shape[0], dtype=bool)

    def finalise_parameters(
        self, parameters: np.ndarray, coefficients: np.ndarray, u_hat: np.ndarray
    ) -> np.ndarray:
        """Parameters to store, given the solution; default: as drawn."""
        return parameters

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The parameter ranges that define this task (stored as a file attribute)."""
        return {k: tuple(v) for k, v in vars(self).items() if k.endswith("_range")}

    def config(self) -> dict:
        """A JSON-able description of this system, enough to rebuild it."""
        out = {"system": self.name}
        for k, v in vars(self).items():
            if k != "source":
                out[k] = list(v) if isinstance(v, tuple) else v
        return out

    def sample(self, indices: np.ndarray, seed: int, resolution: int, dtype=np.float64) -> Samples:
        """Draw and solve the samples ``indices`` of the dataset with this ``seed``.

        Computation is in float64; ``dtype`` is the type of the returned fields.
        """
        check_resolution(resolution)
        indices = np.asarray(indices, dtype=np.int64)
        rngs = [
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(i),)))
            for i in indices
        ]
        out = self._solve_batch(rngs, indices, resolution, dtype)
        for _ in range(MAX_ATTEMPTS):
            redo = np.flatnonzero(~self.accept(out.outputs[:, 0]))
            if redo.size == 0:
                return out
            again = self._solve_batch([rngs[i] for i in redo], indices[redo], resolution, dtype)
            for whole, part in zip(out, again, strict=True):
                whole[redo] = part
        raise RuntimeError(
            f"{self.name}: could not draw acceptable samples in {MAX_ATTEMPTS} attempts "
            f"with {self.config()}; widen the parameter ranges"
        )

    def _solve_batch(self, rngs, indices, resolution: int, dtype) -> Samples:
        amplitudes = np.stack(
            [self.source.draw(r, int(i)) for r, i in zip(rngs, indices, strict=True)]
        )
        parameters = np.stack([self.draw(r) for r in rngs])
        fields = np.empty((len(rngs), 2, resolution, resolution), dtype=dtype)
        coefficients = np.empty((len(rngs), 6))
        for lo in range(0, len(rngs), BLOCK):  # small blocks keep the arrays in cache
            block = slice(lo, lo + BLOCK)
            f = self.source.evaluate(amplitudes[block], resolution)
            f /= f.max(axis=(-2, -1), keepdims=True)
            f_hat = _spectral.rfft2(f)
            coefficients[block] = self.coefficients(parameters[block], f_hat)
            f_hat, u_hat = _spectral.solve_hat(f_hat, coefficients[block])
            fields[block, 0] = _spectral.irfft2(f_hat, resolution)
            fields[block, 1] = _spectral.irfft2(u_hat, resolution)
            parameters[block] = self.finalise_parameters(
                parameters[block], coefficients[block], u_hat
            )
        return Samples(fields[:, :1], fields[:, 1:], coefficients, parameters)
