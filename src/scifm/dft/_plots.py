"""Figures of a DFT run: band structure, density of states, self-diagonalisation."""

from __future__ import annotations

import numpy as np

from scifm._io import figure
from scifm.dft._bands import Bands
from scifm.dft._crystal import HARTREE_EV


def plot_bands(bands: Bands, title: str = ""):
    fig = figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    e = (bands.eigenvalues - bands.reference) * HARTREE_EV
    ax.plot(bands.distance, e, color="tab:blue", lw=1.2)
    for i, _ in bands.labels:
        ax.axvline(bands.distance[i], color="0.7", lw=0.6)
    ax.axhline(0, color="0.4", lw=0.6, ls="--")
    ax.set_xticks([bands.distance[i] for i, _ in bands.labels])
    ax.set_xticklabels(["Γ" if n == "G" else n for _, n in bands.labels])
    ax.set_xlim(bands.distance[0], bands.distance[-1])
    ax.set_ylabel("energy (eV)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_dos(energies, dos, title: str = ""):
    fig = figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ax.plot(energies, dos, color="tab:blue")
    ax.fill_between(energies, dos, where=energies <= 0, color="tab:blue", alpha=0.25)
    ax.axvline(0, color="0.4", lw=0.6, ls="--")
    ax.set_xlabel("energy (eV)")
    ax.set_ylabel("states / eV / cell")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_self_diagonalisation(rows: list[dict], title: str = ""):
    """Off-diagonal |H_ij|, commutator |[H, F]| and occupation error against step."""
    fig = figure(figsize=(6, 4))
    ax = fig.add_subplot()
    steps = np.array([r["step"] for r in rows])
    for key, label in [
        ("max_offdiagonal", "max |H_ij|, i != j"),
        ("max_commutator", "max |[H, F]_ij|"),
        ("max_occupation_error", "max |f - f_FD(H_ii)|"),
        ("gradient_norm", "gradient norm"),
    ]:
        values = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        if np.any(values > 0):
            ax.semilogy(steps, np.where(values > 0, values, np.nan), label=label)
    ax.set_xlabel("step")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig
