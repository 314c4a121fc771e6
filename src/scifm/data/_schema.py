"""The HDF5 dataset layouts scifm reads: its own (format version 1) and the reference code's.

The scifm layout (``Layout.SCIFM``), datasets::

    inputs        (N, C, H, W) float32   input fields, named by the attribute `names`: the
                                         source f, exactly the f of the `equation` attribute,
                                         then coefficient fields (Darcy: f, a); without
                                         `names`, C = 1 and the channel is f
    outputs       (N, K, H, W) float32   output fields, attribute `names` (default: u)
    coefficients  (N, 6)       float32   k11, k22, k12, vx, vy, omega (attribute `names`)
    parameters    (N, Q)       float32   the system's physics parameters (attribute `names`)

Attributes: format, format_version, system, equation, system_config (JSON), ranges (JSON),
resolution, seed, n, scifm_version, created, complete. Files are written as ``NAME.partial`` and
renamed when complete; a partial file records ``n_written`` so generation can resume.

The reference layout (``Layout.REFERENCE``, the neuraloperators-TL-scaling code), datasets::

    fields        (N, 2, H, W)           channel 0 the source f, channel 1 the solution u
    tensor        (N, P)                 the system's coefficients; P names the system
                                         (``REFERENCE_TENSOR_WIDTHS``)
    other         (N,) or (N, 1)         optional: the realised advection ratio psi

``N >= 1`` in both, and every dataset has the same ``N``. ``scifm.data.open`` refuses a file
that breaks any of this, naming the file, the dataset and the shape it expected.
"""

from __future__ import annotations

import enum

from scifm.pdes import COEFFICIENT_NAMES

FORMAT = "scifm-pde"
FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"
INPUT_NAMES = ("f",)  # the channels of a file without `names`: the source
OUTPUT_NAMES = ("u",)

# tensor width -> system; the columns are Poisson (k11, k22, k12), advection-diffusion
# (k11, k22, k12, vx, vy), Helmholtz (kappa, omega)
REFERENCE_TENSOR_WIDTHS = {3: "poisson", 5: "advdiff", 2: "helmholtz"}

# The Well (PolymathicAI): fields grouped by tensor order, read as one-step samples (_well)
WELL_FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
WELL_DATASETS = (
    "groups t0_fields, t1_fields, t2_fields of fields (B, T, H, W[, D[, D]]) named by "
    "field_names, dimensions (time (T), x (H), y (W)), optional scalars and boundary_conditions"
)


class Layout(enum.Enum):
    """The dataset layout of an open file; ``.value`` is the name summaries print."""

    SCIFM = "scifm"
    REFERENCE = "reference"
    PDEBENCH = "pdebench-darcy"
    WELL = "the-well"

    @property
    def datasets(self) -> str:
        """What this layout holds, as error messages list it."""
        if self is Layout.SCIFM:
            return (
                f"inputs (N, C, H, W), outputs (N, K, H, W), coefficients (N, "
                f"{len(COEFFICIENT_NAMES)}), parameters (N, Q)"
            )
        if self is Layout.PDEBENCH:
            return (
                "nu (N, H, W) the coefficient, tensor (N, 1, H, W) the solution, the forcing "
                "beta in the file name (2D_DarcyFlow_beta1.0_Train.hdf5)"
            )
        if self is Layout.WELL:
            return WELL_DATASETS
        widths = ", ".join(f"{p} ({name})" for p, name in REFERENCE_TENSOR_WIDTHS.items())
        return f"fields (N, 2, H, W), tensor (N, P) with P one of {widths}, optional other (N,)"
