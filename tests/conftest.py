"""Tests check mathematics in float64; JAX is told so before anything imports it.

Compilation dominates the suite's time, and many tests compile the same step again in another
process (the CLI's subprocesses, the executors', both xdist workers). JAX's persistent
compilation cache, one folder per test run shared by every process of that run (inherited
through the environment), compiles each of them once. It changes no result: a cached
executable is the one XLA compiled. The folder is removed when the run ends.
"""

import os
import shutil
import tempfile

_OWNER = "SCIFM_TESTS_JAX_CACHE" not in os.environ  # the first process: controller or lone
if _OWNER:
    os.environ["SCIFM_TESTS_JAX_CACHE"] = tempfile.mkdtemp(prefix="scifm-tests-jax-cache-")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["SCIFM_TESTS_JAX_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402 - after the cache settings, which JAX reads when first imported

jax.config.update("jax_enable_x64", True)


def pytest_unconfigure(config):
    if _OWNER:
        shutil.rmtree(os.environ["SCIFM_TESTS_JAX_CACHE"], ignore_errors=True)
