"""Checking gradients: ``check_grads`` and its report, finite differences, rule checks, the
pre-flight report, NaN hunting and the pytest helper.

``check_grads`` is the one place in funcgrad that calls JAX's AD (to compare funcgrad against it).
Each module imports only ``funcgrad.core``, ``funcgrad.rules`` and ``funcgrad.api`` (not
``funcgrad.inspect`` or ``funcgrad.nn``); docs/debugging.md describes the tools.
"""
