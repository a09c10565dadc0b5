"""Benchmarks: funcgrad vs jax.grad (under jit and eagerly), PyTorch and HIPS autograd.

``python -m benchmarks.run`` runs everything and updates ``benchmarks/RESULTS.md``;
``python -m benchmarks.scaling`` only the graph-size scaling measurement.
"""
