"""The HDF5 dataset layout (format version 1).

Datasets::

    inputs        (N, 1, H, W) float32   the source f, exactly the f of the `equation` attribute
    outputs       (N, 1, H, W) float32   the solution u
    coefficients  (N, 6)       float32   k11, k22, k12, vx, vy, omega (attribute `names`)
    parameters    (N, Q)       float32   the system's physics parameters (attribute `names`)

Attributes: format, format_version, system, equation, system_config (JSON), ranges (JSON),
resolution, seed, n, scifm_version, created, complete. Files are written as ``NAME.partial`` and
renamed when complete; a partial file records ``n_written`` so generation can resume.
"""

from __future__ import annotations

FORMAT = "scifm-pde"
FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
