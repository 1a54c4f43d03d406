"""C4 and D4 group CNNs: finite equivariance, twin invariance and kernel identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import twins
import zoo
from twins import nt, stax
from twins import planar as twin_planar
from zoo.planar import (
    group_order,
    multiplication_table,
    transform_group_features,
    transform_images,
)

GROUPS = ("C4", "D4")


def _normal(seed: int, shape, dtype=jnp.float32):
    return jax.random.normal(jax.random.PRNGKey(seed), shape, dtype)


def _relative_error(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# Group actions.


@pytest.mark.parametrize("group", GROUPS)
def test_multiplication_table_composes(group):
    image = _normal(0, (5, 5))
    table = multiplication_table(group)
    for a in range(group_order(group)):
        for b in range(group_order(group)):
            composed = transform_images(transform_images(image, group, b), group, a)
            direct = transform_images(image, group, int(table[a, b]))
            np.testing.assert_array_equal(composed, direct)


@pytest.mark.parametrize("group", GROUPS)
def test_group_feature_action_is_action(group):
    features = _normal(1, (2, group_order(group), 5, 5))
    table = multiplication_table(group)
    for a in range(group_order(group)):
        for b in range(group_order(group)):
            twice = transform_group_features(
                transform_group_features(features, group, b), group, a
            )
            once = transform_group_features(features, group, int(table[a, b]))
            np.testing.assert_array_equal(twice, once)


# Finite equivariance, float32.

LAYER_CASES = [
    ("C4", "SAME", 3),
    ("C4", "CIRCULAR", 3),
    ("C4", "VALID", 2),
    ("D4", "SAME", 3),
    ("D4", "CIRCULAR", 5),
    ("D4", "VALID", 3),
]


@pytest.mark.parametrize("group,padding,kernel_size", LAYER_CASES)
def test_lifting_conv_equivariant(group, padding, kernel_size):
    layer = zoo.LiftingConv2d(
        3,
        4,
        kernel_size,
        group=group,
        padding=padding,
        b_std=0.3,
        key=jax.random.PRNGKey(2),
    )
    x = _normal(3, (3, 6, 6))
    y = layer(x)
    assert y.shape[:2] == (4, group_order(group))
    for a in range(1, group_order(group)):
        moved = layer(transform_images(x, group, a))
        expected = transform_group_features(y, group, a)
        np.testing.assert_allclose(moved, expected, atol=1e-5, rtol=0)
        # The action moves the group axis too: a rotation of each map is not enough.
        assert not np.allclose(moved, transform_images(y, group, a), atol=1e-3)


@pytest.mark.parametrize("group,padding,kernel_size", LAYER_CASES)
@pytest.mark.parametrize("support", ["all", "identity", (0, 3)])
def test_group_conv_equivariant(group, padding, kernel_size, support):
    layer = zoo.GroupConv2d(
        4,
        5,
        kernel_size,
        group=group,
        support=support,
        padding=padding,
        b_std=0.3,
        key=jax.random.PRNGKey(4),
    )
    features = _normal(5, (4, group_order(group), 6, 6))
    y = layer(features)
    for a in range(1, group_order(group)):
        moved = layer(transform_group_features(features, group, a))
        expected = transform_group_features(y, group, a)
        np.testing.assert_allclose(moved, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("group", GROUPS)
def test_group_pool_modes(group):
    features = _normal(6, (3, group_order(group), 5, 5))
    pooled = zoo.GroupPool("group_and_space")(features)
    image = zoo.GroupPool("group")(features)
    assert pooled.shape == (3,)
    assert image.shape == (3, 5, 5)
    for a in range(1, group_order(group)):
        moved = transform_group_features(features, group, a)
        np.testing.assert_allclose(zoo.GroupPool()(moved), pooled, atol=1e-6)
        np.testing.assert_allclose(
            zoo.GroupPool("group")(moved), transform_images(image, group, a), atol=1e-6
        )


@pytest.mark.parametrize("build", [zoo.c4_cnn, zoo.d4_cnn])
@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR", "VALID"])
def test_group_cnn_invariant_float32(build, padding):
    model = build(3, [6, 6, 6], 4, padding=padding, key=jax.random.PRNGKey(7))
    group = model.layers[0].group
    x = _normal(8, (3, 7, 7))
    y = model(x)
    assert y.dtype == jnp.float32
    for a in range(1, group_order(group)):
        np.testing.assert_allclose(model(transform_images(x, group, a)), y, atol=1e-5)


def test_plain_cnn_not_invariant():
    # Control: the invariance checks above can fail for a model without it.
    model = zoo.cnn(3, [6, 6], 4, key=jax.random.PRNGKey(7))
    x = _normal(8, (3, 7, 7))
    assert not np.allclose(model(transform_images(x, "C4", 1)), model(x), atol=1e-3)


def test_global_lifting_output_shape():
    layer = zoo.LiftingConv2d(
        3, 4, 6, group="D4", padding="VALID", key=jax.random.PRNGKey(0)
    )
    assert layer(_normal(0, (3, 6, 6))).shape == (4, 8, 1, 1)


# Input errors.


def test_non_square_image_rejected():
    lifting = zoo.LiftingConv2d(3, 4, 3, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="square"):
        lifting(jnp.zeros((3, 6, 5)))
    gconv = zoo.GroupConv2d(3, 4, 3, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="square"):
        gconv(jnp.zeros((3, 4, 6, 5)))
    with pytest.raises(ValueError, match="square"):
        transform_group_features(jnp.zeros((3, 4, 6, 5)), "C4", 1)


def test_non_square_image_rejected_by_twin():
    model = zoo.c4_cnn(3, [4], 2, key=jax.random.PRNGKey(0))
    x = jnp.zeros((2, 3, 6, 5), jnp.float64)
    with pytest.raises(ValueError, match="square"):
        twins.derive(model).kernel_fn(x, None, "nngp")


def test_small_image_rejected_by_twin():
    model = zoo.c4_cnn(
        3, [4, 4], 2, kernel_size=3, padding="VALID", key=jax.random.PRNGKey(0)
    )
    x = jnp.zeros((2, 3, 4, 4), jnp.float64)
    with pytest.raises(ValueError, match="side >= `kernel_size`"):
        twins.derive(model).kernel_fn(x, None, "nngp")


@pytest.mark.parametrize(
    "make,error,pattern",
    [
        (lambda k: zoo.LiftingConv2d(3, 4, 3, group="C8", key=k), ValueError, "C8"),
        (lambda k: zoo.GroupConv2d(3, 4, 3, support="some", key=k), TypeError, "some"),
        (lambda k: zoo.GroupConv2d(3, 4, 3, support=(0, 4), key=k), ValueError, "0, 4"),
        (lambda k: zoo.GroupConv2d(3, 4, 3, support=(), key=k), ValueError, "support"),
        (lambda k: zoo.LiftingConv2d(3, 4, 2, key=k), ValueError, "kernel_size"),
        (
            lambda k: zoo.LiftingConv2d(3, 4, 3, padding="FULL", key=k),
            ValueError,
            "FULL",
        ),
        (lambda k: zoo.GroupPool("space"), ValueError, "space"),
        (lambda k: zoo.group_cnn("C2", 3, [4], 2, key=k), ValueError, "C2"),
    ],
)
def test_invalid_arguments_rejected(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make(jax.random.PRNGKey(0))


def test_wrong_channel_count_rejected():
    lifting = zoo.LiftingConv2d(3, 4, 3, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="3 input channels"):
        lifting(jnp.zeros((2, 5, 5)))
    gconv = zoo.GroupConv2d(3, 4, 3, group="D4", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=r"\(3, 8, H, W\)"):
        gconv(jnp.zeros((3, 4, 5, 5)))


def test_twin_rejects_mismatched_layers():
    key = jax.random.PRNGKey(0)
    lifting = zoo.LiftingConv2d(3, 4, 3, group="C4", key=key)
    with pytest.raises(TypeError, match="C4"):
        twins.derive(
            zoo.Sequential([lifting, zoo.GroupConv2d(4, 4, 3, group="D4", key=key)])
        )
    with pytest.raises(TypeError, match="LiftingConv2d before"):
        twins.derive(zoo.Sequential([zoo.GroupPool()]))
    with pytest.raises(TypeError, match="another lifting"):
        twins.derive(zoo.Sequential([lifting, zoo.LiftingConv2d(4, 4, 3, key=key)]))
    with pytest.raises(ValueError, match="pooling"):
        twins.derive(zoo.Sequential([lifting, zoo.Relu()]))


# Twin kernels.


def _twin_model(group, padding="SAME", support=(0, 1)):
    keys = jax.random.split(jax.random.PRNGKey(9), 4)
    options = {"group": group, "padding": padding, "b_std": 0.1}
    return zoo.Sequential(
        [
            zoo.LiftingConv2d(3, 4, 3, key=keys[0], **options),
            zoo.Relu(),
            zoo.GroupConv2d(4, 4, 3, support=support, key=keys[1], **options),
            zoo.Erf(),
            zoo.GroupConv2d(4, 4, 3, support="all", key=keys[2], **options),
            zoo.Gelu(),
            zoo.GroupPool(),
            zoo.Dense(4, 3, key=keys[3]),
        ]
    )


@pytest.mark.parametrize("group", GROUPS)
def test_pooled_twin_invariant(group):
    x1 = _normal(10, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(11, (3, 3, 5, 5), jnp.float64)
    kernel_fn = twins.derive(_twin_model(group)).kernel_fn
    reference = kernel_fn(x1, x2, ("nngp", "ntk"))
    for a in range(1, group_order(group)):
        for moved in (
            kernel_fn(transform_images(x1, group, a), x2, ("nngp", "ntk")),
            kernel_fn(x1, transform_images(x2, group, a), ("nngp", "ntk")),
        ):
            np.testing.assert_allclose(moved.nngp, reference.nngp, rtol=1e-12)
            np.testing.assert_allclose(moved.ntk, reference.ntk, rtol=1e-12)


def test_pooled_cnn_twin_not_invariant():
    # Control: the plain CNN twin changes under rotation of one argument.
    model = zoo.cnn(3, [4, 4], 3, padding="SAME", key=jax.random.PRNGKey(0))
    x1 = _normal(10, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(11, (3, 3, 5, 5), jnp.float64)
    kernel_fn = twins.derive(model).kernel_fn
    moved = kernel_fn(x1, transform_images(x2, "C4", 1), "ntk")
    assert _relative_error(moved, kernel_fn(x1, x2, "ntk")) > 1e-3


def _group_kernel_fns(module):
    """Kernel functions of a model ending on group features, both block layouts."""
    relative, layout = twins.to_stax(module)
    with twin_planar.full_blocks():
        full, full_layout = twins.to_stax(module)
    assert layout == twin_planar.GroupLayout(module.layers[0].group, "relative")
    assert full_layout == twin_planar.GroupLayout(module.layers[0].group, "full")
    return stax.serial(relative)[2], stax.serial(full)[2]


@pytest.mark.parametrize(
    "group,padding", [("C4", "VALID"), ("C4", "CIRCULAR"), ("D4", "SAME")]
)
def test_relative_blocks_expand_to_full(group, padding):
    # The full layout applies the formulas to all |G|^2 blocks, with the
    # support sum over K_{gh,g'h}; the relative layout must expand to it.
    model = _twin_model(group, padding, support=(0, 1, 3))
    prefix = zoo.Sequential(model.layers[:6])
    relative_fn, full_fn = _group_kernel_fns(prefix)
    side = 7 if padding == "VALID" else 5
    x1 = _normal(12, (2, 3, side, side), jnp.float64)
    x2 = _normal(13, (3, 3, side, side), jnp.float64)

    relative = twin_planar.expand_kernel(relative_fn(x1, x2), group)
    full = full_fn(x1, x2)
    for name in ("nngp", "ntk", "cov1", "cov2"):
        np.testing.assert_allclose(
            getattr(relative, name), getattr(full, name), rtol=1e-12, atol=1e-14
        )

    pooled = twins.derive(model).kernel_fn(x1, x2, ("nngp", "ntk"))
    pooled_full = twin_planar.derive_full_blocks(model).kernel_fn(
        x1, x2, ("nngp", "ntk")
    )
    np.testing.assert_allclose(pooled.nngp, pooled_full.nngp, rtol=1e-12)
    np.testing.assert_allclose(pooled.ntk, pooled_full.ntk, rtol=1e-12)


def test_relative_blocks_same_input():
    # x2 = None: neural-tangents passes no cov2, and nngp is K(x1, x1).
    model = _twin_model("C4")
    x1 = _normal(14, (2, 3, 5, 5), jnp.float64)
    kernel_fn = twins.derive(model).kernel_fn
    alone = kernel_fn(x1, None, ("nngp", "ntk"))
    paired = kernel_fn(x1, x1, ("nngp", "ntk"))
    np.testing.assert_allclose(alone.nngp, paired.nngp, rtol=1e-12)
    np.testing.assert_allclose(alone.ntk, paired.ntk, rtol=1e-12)


def test_twin_works_with_nt_batch():
    model = zoo.d4_cnn(3, [4], 2, key=jax.random.PRNGKey(33))
    kernel_fn = twins.derive(model).kernel_fn
    x1 = _normal(33, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(34, (4, 3, 5, 5), jnp.float64)
    batched = nt.batch(kernel_fn, batch_size=2, device_count=0)
    whole = kernel_fn(x1, x2, ("nngp", "ntk"))
    parts = batched(x1, x2, ("nngp", "ntk"))
    np.testing.assert_allclose(parts.nngp, whole.nngp, rtol=1e-12)
    np.testing.assert_allclose(parts.ntk, whole.ntk, rtol=1e-12)
    # With x2 = None the diagonal blocks pass through ReLU's arccos at cosine
    # 1, where rounding errors grow to about 1e-10.
    np.testing.assert_allclose(
        batched(x1, None, "ntk"), kernel_fn(x1, None, "ntk"), rtol=1e-8
    )


@pytest.mark.parametrize("group", GROUPS)
def test_lifting_after_plain_conv(group):
    # A plain conv twin hands over neural-tangents' reversed spatial layout
    # (W, W', H, H'). A 1x1 conv with W_std = 1 and no bias leaves the kernel
    # unchanged, so the lifting twin must give the same kernel either way.
    key = jax.random.PRNGKey(30)
    pointwise = zoo.Conv2d(3, 3, 1, key=key)
    lifting = zoo.LiftingConv2d(3, 4, 3, group=group, b_std=0.2, key=key)
    x1 = _normal(31, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(32, (3, 3, 5, 5), jnp.float64)
    direct, _ = twins.to_stax(zoo.Sequential([lifting]))
    after_conv, _ = twins.to_stax(zoo.Sequential([pointwise, lifting]))
    expected = stax.serial(direct)[2](x1, x2, "nngp")
    kernel = stax.serial(after_conv)[2](x1, x2, "nngp")
    np.testing.assert_allclose(kernel, expected, rtol=1e-12, atol=1e-14)


def _single_output_ntk(layer, inputs1, inputs2):
    """Empirical NTK of output channel 0 between all output positions.

    For a layer linear in N(0, 1) weights this equals the output covariance.
    """

    def apply(module, x):
        return jax.vmap(module)(x)[:, 0].reshape(x.shape[0], -1)

    ntk_fn = nt.empirical_ntk_fn(apply, trace_axes=(), vmap_axes=0)
    return ntk_fn(inputs1, inputs2, layer)


@pytest.mark.parametrize("group,padding,kernel_size", LAYER_CASES)
def test_lifting_twin_matches_linear_layer(group, padding, kernel_size):
    # One lifting layer is linear in its N(0, 1) weights, so the empirical
    # NTK of one output channel equals the covariance the twin computes.
    layer = zoo.LiftingConv2d(
        3,
        1,
        kernel_size,
        group=group,
        padding=padding,
        W_std=1.3,
        b_std=0.4,
        dtype=jnp.float64,
        key=jax.random.PRNGKey(15),
    )
    x1 = _normal(16, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(17, (3, 3, 5, 5), jnp.float64)
    empirical = _single_output_ntk(layer, x1, x2)

    with twin_planar.full_blocks():
        twin_layer, _ = twins.to_stax(layer)
    kernel = stax.serial(twin_layer)[2](x1, x2, "nngp")
    # (N1, N2, g, g', H, H', W, W') -> (N1, N2, g, H, W, g', H', W')
    kernel = jnp.transpose(kernel, (0, 1, 2, 4, 6, 3, 5, 7))
    n1, n2 = kernel.shape[:2]
    side = kernel.shape[-1]
    size = group_order(group) * side * side
    np.testing.assert_allclose(
        kernel.reshape(n1, n2, size, size), empirical, rtol=1e-10, atol=1e-12
    )


GCONV_CASES = [
    (*case, support)
    for case, support in zip(LAYER_CASES, ["all", "identity", (1, 2)] * 2, strict=True)
]


@pytest.mark.parametrize("group,padding,kernel_size,support", GCONV_CASES)
def test_group_conv_twin_matches_linear_layer(group, padding, kernel_size, support):
    # On fixed feature maps f the input kernel is K_{g,g'}(t, t') =
    # (1/C) sum_c f_{c,g}(t) f'_{c,g'}(t'), which is not relative, so this
    # checks the full-layout rule, support sum included.
    order = group_order(group)
    layer = zoo.GroupConv2d(
        3,
        1,
        kernel_size,
        group=group,
        support=support,
        padding=padding,
        W_std=0.8,
        b_std=0.3,
        dtype=jnp.float64,
        key=jax.random.PRNGKey(18),
    )
    f1 = _normal(19, (2, 3, order, 5, 5), jnp.float64)
    f2 = _normal(20, (3, 3, order, 5, 5), jnp.float64)
    empirical = _single_output_ntk(layer, f1, f2)

    def input_kernel(a, b):
        return jnp.einsum("ncgij,mchkl->nmghikjl", a, b) / a.shape[1]

    def input_cov(a):
        return jnp.einsum("ncgij,nchkl->nghikjl", a, a) / a.shape[1]

    # A kernel with the right metadata, from a lifting twin of the same group.
    with twin_planar.full_blocks():
        lifting = zoo.LiftingConv2d(3, 3, 1, group=group, key=jax.random.PRNGKey(0))
        start, layout = twins.to_stax(lifting)
        gconv_layer, _ = twins.to_stax(layer, layout)
    kernel = stax.serial(start)[2](f1[:, :, 0], f2[:, :, 0])
    kernel = kernel.replace(
        nngp=input_kernel(f1, f2),
        ntk=None,
        cov1=input_cov(f1),
        cov2=input_cov(f2),
    )
    out = gconv_layer[2](kernel).nngp
    out = jnp.transpose(out, (0, 1, 2, 4, 6, 3, 5, 7))
    side = out.shape[-1]
    size = order * side * side
    np.testing.assert_allclose(
        out.reshape(*out.shape[:2], size, size), empirical, rtol=1e-10, atol=1e-12
    )


# Data-augmentation identities, float64.


def _flat(x):
    return x.reshape(x.shape[0], -1)


def _rotation_averaged(kernel_fn, x1, x2, group="C4", flatten=False):
    """Return `(1/|G|) sum_a k(x1, a x2)` for the NNGP and the NTK."""
    order = group_order(group)
    reshape = _flat if flatten else (lambda x: x)
    kernels = [
        kernel_fn(reshape(x1), reshape(transform_images(x2, group, a)), ("nngp", "ntk"))
        for a in range(order)
    ]
    nngp = sum(k.nngp for k in kernels) / order
    ntk = sum(k.ntk for k in kernels) / order
    return nngp, ntk


def _cnn_pair(support):
    key = jax.random.PRNGKey(21)
    options = {
        "kernel_size": 3,
        "padding": "CIRCULAR",
        "W_std": 1.4,
        "b_std": 0.2,
        "activation": zoo.Relu,
        "key": key,
    }
    cnn = zoo.cnn(3, [5, 5, 5], 2, **options)
    c4 = zoo.c4_cnn(3, [5, 5, 5], 2, support=support, **options)
    return cnn, c4


def test_c4_gcnn_equals_rotation_averaged_cnn():
    cnn, c4 = _cnn_pair("identity")
    x1 = _normal(22, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(23, (3, 3, 5, 5), jnp.float64)
    nngp, ntk = _rotation_averaged(twins.derive(cnn).kernel_fn, x1, x2)
    kernel = twins.derive(c4).kernel_fn(x1, x2, ("nngp", "ntk"))
    assert _relative_error(kernel.nngp, nngp) < 1e-10
    assert _relative_error(kernel.ntk, ntk) < 1e-10


def test_d4_gcnn_differs_from_c4_averaged_cnn():
    # Control: D4 also averages over reflections, so its twin is another kernel.
    cnn, _ = _cnn_pair("identity")
    d4 = zoo.d4_cnn(
        3,
        [5, 5, 5],
        2,
        support="identity",
        W_std=1.4,
        b_std=0.2,
        key=jax.random.PRNGKey(0),
    )
    x1 = _normal(22, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(23, (3, 3, 5, 5), jnp.float64)
    _, ntk = _rotation_averaged(twins.derive(cnn).kernel_fn, x1, x2)
    assert _relative_error(twins.derive(d4).kernel_fn(x1, x2, "ntk"), ntk) > 1e-4


def _mlp_pair(side=5):
    keys = jax.random.split(jax.random.PRNGKey(24), 4)
    options = {"W_std": 1.3, "b_std": 0.1}
    # The MLP takes the images flattened in C order, as `zoo.Flatten` does.
    mlp = zoo.Sequential(
        [
            zoo.Dense(3 * side * side, 6, key=keys[0], **options),
            zoo.Erf(),
            zoo.Dense(6, 6, key=keys[1], **options),
            zoo.Relu(),
            zoo.Dense(6, 2, key=keys[2], **options),
        ]
    )
    global_c4 = zoo.Sequential(
        [
            # Filter as large as the image with VALID padding: a global lifting.
            zoo.LiftingConv2d(
                3, 6, side, group="C4", padding="VALID", key=keys[0], **options
            ),
            zoo.Erf(),
            zoo.GroupConv2d(
                6, 6, 1, group="C4", support="identity", key=keys[1], **options
            ),
            zoo.Relu(),
            zoo.GroupPool(),
            zoo.Dense(6, 2, key=keys[2], **options),
        ]
    )
    return mlp, global_c4


def test_global_c4_equals_rotation_averaged_mlp():
    mlp, global_c4 = _mlp_pair()
    x1 = _normal(25, (2, 3, 5, 5), jnp.float64)
    x2 = _normal(26, (3, 3, 5, 5), jnp.float64)
    nngp, ntk = _rotation_averaged(twins.derive(mlp).kernel_fn, x1, x2, flatten=True)
    kernel = twins.derive(global_c4).kernel_fn(x1, x2, ("nngp", "ntk"))
    assert _relative_error(kernel.nngp, nngp) < 1e-10
    assert _relative_error(kernel.ntk, ntk) < 1e-10


def _augmented(x, y, group="C4"):
    order = group_order(group)
    x_aug = jnp.concatenate([transform_images(x, group, a) for a in range(order)])
    return x_aug, jnp.tile(y, (order, 1))


TIMES = (0.0, 0.3, 3.0, None)


@pytest.mark.parametrize("pair", ["cnn", "mlp"])
@pytest.mark.parametrize("get", ["ntk", "nngp"])
def test_gcnn_predictor_equals_augmented(pair, get):
    plain, equivariant = _cnn_pair("identity") if pair == "cnn" else _mlp_pair(5)
    x_train = _normal(27, (4, 3, 5, 5), jnp.float64)
    y_train = _normal(28, (4, 2), jnp.float64)
    x_test = _normal(29, (2, 3, 5, 5), jnp.float64)
    x_aug, y_aug = _augmented(x_train, y_train)

    predict_equivariant = nt.predict.gradient_descent_mse_ensemble(
        twins.derive(equivariant).kernel_fn, x_train, y_train
    )
    reshape = _flat if pair == "mlp" else (lambda x: x)
    predict_augmented = nt.predict.gradient_descent_mse_ensemble(
        twins.derive(plain).kernel_fn, reshape(x_aug), y_aug
    )
    for t in TIMES:
        mean = predict_equivariant(t, x_test, get)
        mean_augmented = predict_augmented(t, reshape(x_test), get)
        if t == 0.0:
            np.testing.assert_allclose(mean, mean_augmented, atol=1e-12)
            continue
        assert _relative_error(mean, mean_augmented) < 1e-8, t
