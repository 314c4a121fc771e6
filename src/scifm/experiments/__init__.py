"""Experiments: the end-to-end jobs built from the library (for now, the data demo)."""

from scifm.experiments._demo import run_demo

__all__ = ["run_demo"]
