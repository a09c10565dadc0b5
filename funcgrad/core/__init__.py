"""The engine: read it in one sitting, in this order.

``ir`` (the graph IR and its text form) -> ``jax_compat`` (every JAX-version difference) ->
``tracer`` (JAX function -> ``Graph``, the only reader of jaxprs) -> ``concrete`` (the same while
computing values, for Python control flow outside jit) -> ``interpret`` / ``typecheck`` ->
``registry`` (one record per primitive) -> ``activity`` (which equations are differentiated) ->
``hooks`` -> ``sweep`` (the reverse sweep) -> ``nested`` (rules that sweep another program) ->
``graph_edit``, ``call`` (argument splitting), ``cache``, ``tags``.

The core imports nothing of funcgrad above it but ``funcgrad.errors`` (an import contract in
pyproject.toml says so); this package re-exports nothing, so each name is read where it is defined.
"""
