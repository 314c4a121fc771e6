"""Analytic Goedecker-Teter-Hutter (GTH/HGH) norm-conserving pseudopotentials.

Local part (Goedecker, Teter, Hutter, Phys. Rev. B 54, 1703 (1996)), in reciprocal space per
unit volume, with ``x = (q r_loc)^2``::

    v_loc(q) = -4 pi Z exp(-x/2) / q^2
               + sqrt(8 pi^3) r_loc^3 exp(-x/2) [C1 + C2 (3 - x) + C3 (15 - 10 x + x^2)
                                                  + C4 (105 - 105 x + 21 x^2 - x^3)]

The divergent ``-4 pi Z / q^2`` at q = 0 cancels against the Hartree and Ewald q = 0 terms
(charge neutrality); what remains finite is the ``E_alpha`` ("psp_core" in ABINIT) energy
``(N_el / Omega) sum_atoms [2 pi Z r_loc^2 + (2 pi)^(3/2) r_loc^3 (C1 + 3 C2 + 15 C3 + 105 C4)]``.

Non-local part (Hartwigsen, Goedecker, Hutter, Phys. Rev. B 58, 3641 (1998)):
``V_nl = sum_{l m i j} |p_i^lm> h^l_ij <p_j^lm|`` with Gaussian projectors
``p_i^l(r) = sqrt(2) r^(l + 2(i-1)) exp(-r^2 / 2 r_l^2) / (r_l^(l + (4i-1)/2) sqrt(Gamma(l + (4i-1)/2)))``
times a real spherical harmonic; their Fourier transforms are closed forms (below), checked
against numerical Hankel transforms in the tests.

Parameters: the GTH-PADE (LDA) table as distributed with CP2K (``data/GTH_POTENTIALS``, M.
Krack, Theor. Chem. Acc. 114, 145 (2005), eight digits), from which ABINIT's ``psp10``
files are made; only the numbers are taken, as published facts.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from scifm._checks import UserError

SOURCE = (
    "GTH-PADE (LDA) parameters: Goedecker, Teter, Hutter, PRB 54, 1703 (1996); Hartwigsen, "
    "Goedecker, Hutter, PRB 58, 3641 (1998); Krack, TCA 114, 145 (2005); digits as in CP2K's "
    "data/GTH_POTENTIALS"
)


@dataclasses.dataclass(frozen=True)
class GTH:
    """One element's GTH pseudopotential.

    Attributes:
        symbol: element.
        zion: valence charge.
        r_loc: radius of the local part (bohr).
        c: local coefficients C1..C4 (missing ones are zero).
        channels: one ``(r_l, h)`` per angular momentum l = 0, 1, 2, ...: the projector radius
            and the symmetric coupling matrix ``h^l_ij`` (Hartree); an empty ``h`` for a
            channel without projectors.
    """

    symbol: str
    zion: int
    r_loc: float
    c: tuple[float, ...]
    channels: tuple[tuple[float, tuple[tuple[float, ...], ...]], ...] = ()

    @property
    def c4(self) -> tuple[float, float, float, float]:
        return tuple(self.c) + (0.0,) * (4 - len(self.c))

    def alpha(self) -> float:
        """The finite q -> 0 limit of ``v_loc(q) + 4 pi Z / q^2`` (bohr^3 Hartree)."""
        c1, c2, c3, c4 = self.c4
        r = self.r_loc
        return 2 * math.pi * self.zion * r**2 + (2 * math.pi) ** 1.5 * r**3 * (
            c1 + 3 * c2 + 15 * c3 + 105 * c4
        )

    def local(self, q2):
        """``v_loc(q)`` for ``q2 = q^2 > 0`` (the q = 0 entry is set to 0: see ``alpha``)."""
        c1, c2, c3, c4 = self.c4
        r = self.r_loc
        x = q2 * r**2
        gauss = jnp.exp(-x / 2)
        poly = c1 + c2 * (3 - x) + c3 * (15 - 10 * x + x**2) + c4 * (105 - 105 * x + 21 * x**2 - x**3)
        safe = jnp.where(q2 > 0, q2, 1.0)
        coulomb = jnp.where(q2 > 0, -4 * jnp.pi * self.zion * gauss / safe, 0.0)
        return coulomb + jnp.where(q2 > 0, jnp.sqrt(8 * jnp.pi**3) * r**3 * gauss * poly, 0.0)


def radial_projector(l: int, i: int, r: float, q):
    """``4 pi int r'^2 j_l(q r') p_i^l(r') dr'``: the projector's radial Fourier transform
    (multiply by a real spherical harmonic of q and divide by sqrt(Omega) for <k+G|p>)."""
    x = (q * r) ** 2
    e = jnp.exp(-x / 2) * jnp.pi**1.25
    if l == 0:
        pre = r**1.5
        forms = {
            1: 4 * math.sqrt(2) * pre * e,
            2: 8 * math.sqrt(2 / 15) * pre * (3 - x) * e,
            3: 16 / 3 * math.sqrt(2 / 105) * pre * (15 - 10 * x + x**2) * e,
        }
    elif l == 1:
        pre = r**2.5 * q
        forms = {
            1: 8 / math.sqrt(3) * pre * e,
            2: 16 / math.sqrt(105) * pre * (5 - x) * e,
            3: 32 / 3 / math.sqrt(1155) * pre * (35 - 14 * x + x**2) * e,
        }
    elif l == 2:
        pre = r**3.5 * q**2
        forms = {
            1: 8 * math.sqrt(2 / 15) * pre * e,
            2: 16 / 3 * math.sqrt(2 / 105) * pre * (7 - x) * e,
        }
    else:
        forms = {}
    if i not in forms:
        raise UserError(f"GTH projectors with l = {l}, i = {i} are not implemented")
    return forms[i]


def real_harmonics(l: int, q):
    """Real spherical harmonics ``Y_lm(q / |q|)`` for ``q`` of shape (..., 3), stacked last;
    orthonormal on the sphere (the sum over m is ``(2l+1) P_l / 4 pi``)."""
    norm = jnp.sqrt(jnp.sum(q**2, axis=-1, keepdims=True))
    u = q / jnp.where(norm > 0, norm, 1.0)
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    if l == 0:
        return jnp.full(q.shape[:-1] + (1,), 1 / math.sqrt(4 * math.pi), dtype=q.dtype)
    if l == 1:
        return math.sqrt(3 / (4 * math.pi)) * jnp.stack([x, y, z], axis=-1)
    if l == 2:
        c = math.sqrt(15 / (4 * math.pi))
        return jnp.stack(
            [
                c * x * y,
                c * y * z,
                c * x * z,
                c / 2 * (x**2 - y**2),
                math.sqrt(5 / (16 * math.pi)) * (3 * z**2 - 1),
            ],
            axis=-1,
        )
    raise UserError(f"angular momentum l = {l} is not implemented")


def _gth(symbol, zion, r_loc, c, *channels):
    return GTH(symbol, zion, r_loc, tuple(c), tuple((r, tuple(map(tuple, h))) for r, h in channels))


def _sym(*rows):
    """Upper-triangle rows (as printed in GTH tables) -> the full symmetric matrix."""
    n = len(rows)
    h = np.zeros((n, n))
    for i, row in enumerate(rows):
        h[i, i:] = row
    return (h + np.triu(h, 1).T).tolist()


GTH_PADE = {
    p.symbol: p
    for p in [
        _gth("H", 1, 0.20000000, [-4.18023680, 0.72507482]),
        _gth("He", 2, 0.20000000, [-9.11202340, 1.69836797]),
        _gth("Li", 3, 0.40000000, [-14.03486849, 9.55347627, -1.76648817, 0.08436998]),
        _gth("Be", 4, 0.32500000, [-24.01504092, 17.20401444, -3.32639018, 0.16541943]),
        _gth("B", 3, 0.43392956, [-5.57864173, 0.80425145], (0.37384326, [[6.23392822]])),
        _gth("C", 4, 0.34883045, [-8.51377110, 1.22843203], (0.30455321, [[9.52284179]])),
        _gth("N", 5, 0.28917923, [-12.23481988, 1.76640728], (0.25660487, [[13.55224272]])),
        _gth("O", 6, 0.24762086, [-16.58031797, 2.39570092], (0.22178614, [[18.26691718]])),
        _gth("F", 7, 0.21852465, [-21.30736112, 3.07286942], (0.19556721, [[23.58494211]])),
        _gth(
            "Na", 1, 0.88550938, [-1.23886713],
            (0.66110390, _sym([1.84727135, -0.22540903], [0.58200362])),
            (0.85711928, [[0.47113258]]),
        ),
        _gth(
            "Mg", 2, 0.65181169, [-2.86429746],
            (0.55647814, _sym([2.97095712, -0.51508390], [1.32994091])),
            (0.67756881, [[1.04988101]]),
        ),
        _gth(
            "Al", 3, 0.45000000, [-8.49135116],
            (0.46010427, _sym([5.08833953, -1.03784325], [2.67969975])),
            (0.53674439, [[2.19343827]]),
        ),
        _gth(
            "Si", 4, 0.44000000, [-7.33610297],
            (0.42273813, _sym([5.90692831, -1.26189397], [3.25819622])),
            (0.48427842, [[2.72701346]]),
        ),
        _gth(
            "P", 5, 0.43000000, [-6.65421981],
            (0.38980284, _sym([6.84213556, -1.49369090], [3.85669332])),
            (0.44079585, [[3.28260592]]),
        ),
        _gth(
            "S", 6, 0.42000000, [-6.55449184],
            (0.36175665, _sym([7.90530250, -1.73188130], [4.47169830])),
            (0.40528502, [[3.86657900]]),
        ),
        _gth(
            "Cl", 7, 0.41000000, [-6.86475431],
            (0.33820832, _sym([9.06223968, -1.96193036], [5.06568240])),
            (0.37613709, [[4.46587640]]),
        ),
        _gth(
            "Ar", 8, 0.40000000, [-7.10000000],
            (0.31738081, _sym([10.24948699, -2.16984522], [5.60251627])),
            (0.35161921, [[4.97880101]]),
        ),
        _gth(
            "Ga", 3, 0.56000000, [],
            (0.61079074, _sym([2.36932516, 0.09644314, -0.13462450], [-0.24901512, 0.34759896], [-0.55179624])),
            (0.70459583, _sym([0.74630529, 0.21683799], [-0.51313234])),
            (0.98257967, [[0.07543656]]),
        ),
        _gth(
            "Ge", 4, 0.54000000, [],
            (0.49374254, _sym([3.82689099, -0.42611775, -0.32795553], [1.10023129, 0.84677753], [-1.34421765])),
            (0.60106438, _sym([1.36251781, 0.26511216], [-0.62736987])),
            (0.78836851, [[0.19120485]]),
        ),
        _gth(
            "As", 5, 0.52000000, [],
            (0.45640025, _sym([4.56076106, -0.65545935, -0.33517391], [1.69238876, 0.86541531], [-1.37380421])),
            (0.55056168, _sym([1.81224664, 0.27329186], [-0.64672658])),
            (0.68528272, [[0.31237276]]),
        ),
    ]
}  # fmt: skip


def gth_pade(symbol: str) -> GTH:
    """The GTH-PADE pseudopotential of ``symbol`` (see :data:`GTH_PADE` for the elements)."""
    if symbol not in GTH_PADE:
        raise UserError(
            f"no pseudopotential for element {symbol!r}; the GTH-PADE table has "
            f"{', '.join(GTH_PADE)}"
        )
    return GTH_PADE[symbol]
