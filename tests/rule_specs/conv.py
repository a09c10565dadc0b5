"""Rows for ``conv_general_dilated`` (funcgrad/rules/conv.py): layouts, strides, padding, dilation, groups."""

import functools

from jax import lax

from tests.rule_specs import RuleSpec, fixed

# variants of a primitive run in float64 only; its first row also runs in float32
F64 = ("float64",)


def pair(x_shape, w_shape):
    return fixed(lambda rng, dt: [rng.normal(size=x_shape).astype(dt), rng.normal(size=w_shape).astype(dt)])


def conv(**kw):
    return functools.partial(lax.conv_general_dilated, **kw)


SPECS = [
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(2, 1), padding="SAME"),
        pair((2, 2, 5, 4), (3, 2, 3, 2)),
        name="conv_nchw_same_strided",
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(1, 2), padding=((1, -1), (0, 2)), dimension_numbers=("NHWC", "HWIO", "NHWC")),
        pair((1, 5, 6, 2), (2, 3, 2, 3)),
        name="conv_nhwc_explicit_negative_pad",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(1, 1), padding=((1, 0), (0, 1)), lhs_dilation=(2, 1), rhs_dilation=(1, 2)),
        pair((1, 2, 4, 6), (2, 2, 2, 2)),
        name="conv_dilated",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(1, 2), padding="SAME", rhs_dilation=(2, 1), feature_group_count=2),
        pair((2, 4, 5, 5), (6, 2, 2, 3)),
        name="conv_feature_groups",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(2, 1), padding=((1, 0), (1, 1)), batch_group_count=2),
        pair((4, 2, 5, 4), (4, 2, 3, 2)),
        name="conv_batch_groups",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(2,), padding="SAME", dimension_numbers=("NWC", "WIO", "NWC")),
        pair((2, 7, 3), (3, 3, 2)),
        name="conv_1d_nwc",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(1, 2, 1), padding="SAME", dimension_numbers=("NCDHW", "OIDHW", "NCDHW")),
        pair((1, 2, 3, 4, 3), (2, 2, 2, 2, 2)),
        name="conv_3d",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(1, 1), padding="SAME", dimension_numbers=("NHWC", "OIHW", "NCHW")),
        pair((2, 4, 3, 2), (3, 2, 2, 2)),
        name="conv_mixed_layouts",
        dtypes=F64,
    ),
    RuleSpec(
        "conv_general_dilated",
        conv(window_strides=(1,), padding="VALID"),
        pair((0, 2, 5), (3, 2, 2)),
        name="conv_empty_batch",
        dtypes=F64,
    ),
]
