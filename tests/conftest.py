import contextlib

import jax
import pytest


@contextlib.contextmanager
def x64():
    """Enable float64 for the duration of a block (works across JAX releases)."""
    if hasattr(jax, "enable_x64"):
        with jax.enable_x64(True):
            yield
    else:  # older releases
        from jax.experimental import enable_x64

        with enable_x64():
            yield


@pytest.fixture
def enable_x64():
    with x64():
        yield
