"""PINN estimator speed and memory against d: `python benchmarks/bench_pinn.py` = `scifm bench pinn`.

Writes bench-pinn-<timestamp>.json in the current directory unless --out is given; pass options through, e.g. `--dims 1000,100000`.
"""

import sys

from scifm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "pinn", *sys.argv[1:]]))
