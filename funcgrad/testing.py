"""Helpers for users' own test suites: ``funcgrad.testing.assert_grads_match``.

Example::

    from funcgrad.testing import assert_grads_match

    def test_my_model_gradients():
        assert_grads_match(loss, params, x, y)
"""

from funcgrad.checking.assertions import assert_grads_match

__all__ = ["assert_grads_match"]
