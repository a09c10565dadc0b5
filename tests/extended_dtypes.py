"""An extended dtype defined as Flax defines ``fp8_ops.fp32_max_grad``: float32 values whose
cotangents accumulate by max (Flax is not a dependency of this project)."""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
from jax import lax
from jax._src import core, dtypes  # what Flax uses to define its dtype


class MaxGradRules:
    @staticmethod
    def physical_element_aval(dtype):
        return core.ShapedArray((), dtype.float_dtype)

    @staticmethod
    def convert_from(this, other) -> bool:
        return this.float_dtype == other

    @staticmethod
    def convert_to(other, this) -> bool:
        return this.float_dtype == other

    @staticmethod
    def add(dt, x, y):
        as_float = partial(lax.convert_element_type, new_dtype=dt.float_dtype)
        return lax.convert_element_type(lax.max(as_float(x), as_float(y)), dt)

    @staticmethod
    def zero(dt):
        return lax.convert_element_type(np.array(-np.inf, dt.float_dtype), dt)

    @staticmethod
    def tangent_dtype(dtype):
        return dtype

    @staticmethod
    def global_sharded_result_handler(aval, out_sharding, committed):
        # eager results of this dtype are EArrays over float32 buffers (as Flax makes them)
        from jax._src import earray
        from jax._src.interpreters import pxla

        physical = pxla.global_result_handlers[core.ShapedArray](core.physical_aval(aval), out_sharding, committed)
        return lambda buffers: earray.EArray(aval, physical(buffers))

    @staticmethod
    def full(shape, fill_value, dtype):
        fill = lax.convert_element_type(fill_value, dtype.float_dtype)
        return lax.convert_element_type(lax.full(shape, fill, dtype.float_dtype), dtype)


class max_grad_type(dtypes.extended):
    pass


@dataclasses.dataclass(frozen=True)
class MaxGradDType(dtypes.ExtendedDType):
    float_dtype: dtypes.DType
    _rules: type = MaxGradRules
    type: type = max_grad_type

    @property
    def name(self) -> str:
        return "max_grad32"


MAX_GRAD32 = MaxGradDType(np.dtype("float32"))
