"""The main demo's training loop written for Equinox and for Flax NNX (examples/): funcgrad's gradient is a drop-in.

Each example imports ``value_and_grad`` from funcgrad where a JAX script imports it from jax, and nothing else
differs; trained with either, the losses agree step by step, and the script itself reaches the demo's accuracy.
"""

import importlib.util
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

import funcgrad

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = ["train_mynet_equinox.py", "train_mynet_nnx.py"]


def _load(name: str):
    sys.path.insert(0, str(EXAMPLES))  # the examples import train_mynet's data loader, as they do when run
    try:
        spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses (an Equinox Module is one) look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.mark.parametrize("name", SCRIPTS)
def test_only_the_gradient_import_is_funcgrads(name):
    source = (EXAMPLES / name).read_text()
    assert re.findall(r"^from funcgrad import .*$", source, re.M) == [
        "from funcgrad import value_and_grad  # JAX: from jax import value_and_grad"
    ]
    assert not re.search(r"^import funcgrad|funcgrad\.\w", source, re.M)  # no other use of funcgrad
    assert not re.search(r"jax\.(grad|value_and_grad|vjp)\b", source)  # no JAX differentiation in the loop


@pytest.mark.parametrize("name", SCRIPTS)
def test_funcgrad_and_jax_train_alike(name):
    module = _load(name)
    assert module.value_and_grad is funcgrad.value_and_grad
    ours, our_acc = module.train(funcgrad.value_and_grad, epochs=2, progress=False)
    theirs, their_acc = module.train(jax.value_and_grad, epochs=2, progress=False)
    assert ours.shape == theirs.shape == (88,)  # 2 epochs of 44 minibatches of 32
    assert ours[-1] < 0.5 * ours[0]  # it learns
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert abs(our_acc - their_acc) <= 1 / 360  # at most one of the 360 test digits differs


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_script_end_to_end(name):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--epochs", "10"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", done.stdout).group(1))
    assert accuracy >= 0.9, done.stdout
