"""Dataset generation speed and memory: `python benchmarks/bench_data.py` = `scifm bench data`."""

import sys

from scifm.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "data", *sys.argv[1:]]))
