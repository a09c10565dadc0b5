"""Random-program fuzzing: funcgrad's gradients and VJPs against JAX's on generated programs.

* ``programs.py``: the generator (a hypothesis strategy, or seeded NumPy draws) of ``Program`` values.
* ``ops/``: the operation table the generator draws from (data: one entry per operation, a module per family).
* ``compare.py``: runs one program through funcgrad and JAX and classifies the outcome.
* ``run.py``: the long run, ``python -m tests.fuzz.run --programs 10000``.
"""
