"""scifm: scientific foundation models in JAX.

The packages (``ls src/scifm``): ``pdes`` (exact PDE data), ``data`` (HDF5 files), ``models``
(FNO, MLP), ``train`` (operator training), ``experiments`` (transfer studies), ``operators``
(derivative estimators), ``pinn`` (high-dimensional PINNs), ``bench`` (benchmarks), ``cli``.
Shared by all of them: the run-directory layer (``_runs``: its errors are re-exported here),
atomic writes and figures (``_io``), progress display (``_progress``).
"""

__version__ = "0.1.0"

from scifm._checks import UserError as UserError  # noqa: E402 - after __version__
from scifm._progress import Display as Display  # noqa: E402
from scifm._progress import NoProgress as NoProgress  # noqa: E402
from scifm._progress import RunBar as RunBar  # noqa: E402
from scifm._progress import RunProgress as RunProgress  # noqa: E402
from scifm._runs import DivergenceError as DivergenceError  # noqa: E402
from scifm._runs import RunConflict as RunConflict  # noqa: E402
from scifm._runs import RunError as RunError  # noqa: E402
from scifm._runs import RunFinished as RunFinished  # noqa: E402

__all__ = [
    "Display",
    "DivergenceError",
    "NoProgress",
    "RunBar",
    "RunConflict",
    "RunError",
    "RunFinished",
    "RunProgress",
    "UserError",
    "__version__",
]
