"""`python -m scifm.cli`: the same as the `scifm` command."""

import sys

from scifm.cli import main

sys.exit(main())
