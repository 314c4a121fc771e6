"""Names for the CLI and benchmarks (strings live only at this boundary)."""

from __future__ import annotations

from scifm._checks import UserError

from .. import operators as ops

ESTIMATORS = {
    "exact": lambda n: ops.Exact(),
    "stde": lambda n: ops.STDE(num_samples=n),
    "stde-dense": lambda n: ops.DenseSTDE(num_samples=n),
    "hte": lambda n: ops.Hutchinson(num_samples=n),
    "sdgd": lambda n: ops.SDGD(num_samples=n),
    "sdgd-fwd": lambda n: ops.SDGD(num_samples=n, forward_over_backward=True),
}


def make_estimator(name: str, num_samples: int = 16) -> ops.AbstractEstimator:
    """Estimator by CLI name; ``sdgd`` is backward-over-backward, ``sdgd-fwd``
    forward-over-backward, ``hte`` Hutchinson with first-order AD, ``stde`` sparse Taylor
    mode, ``stde-dense`` random-direction Taylor mode."""
    if name not in ESTIMATORS:
        raise UserError(f"unknown estimator {name!r}; valid: {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](num_samples)
