"""Schedule values, weight-decay exclusion by path, layer-wise LR decay, clipping, LAMB math."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_tf.models import param_groups
from bert_tf.training import optimization as opt_lib


def test_schedule_values_hand_computed():
    s = opt_lib.WarmupLinearDecay(2.0, warmup_steps=10, decay_steps=110, end_learning_rate=0.2)
    # warmup: 2 * step / 10; decay: 0.2 + 1.8 * (110 - step) / 100; then 0.2.
    expected = {0: 0.0, 1: 0.2, 5: 1.0, 9: 1.8, 10: 2.0, 60: 1.1, 100: 0.38, 110: 0.2, 500: 0.2}
    for step, value in expected.items():
        assert float(s(step)) == pytest.approx(value, rel=1e-6), step
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    assert isinstance(clone, opt_lib.WarmupLinearDecay)
    assert float(clone(60)) == pytest.approx(1.1)


def test_schedule_rejects_warmup_longer_than_training():
    with pytest.raises(ValueError, match="num_warmup_steps"):
        opt_lib.create_optimizer("adamw", 1e-3, num_train_steps=10, num_warmup_steps=20)


def test_decay_exclusion_by_path():
    assert opt_lib.applies_weight_decay("transformer_0/intermediate/kernel")
    assert opt_lib.applies_weight_decay("embeddings/word_embeddings/embeddings")
    for path in (
        "embeddings/layer_norm/gamma",
        "transformer_1/output_layer_norm/beta",
        "transformer_0/attention/qkv_bias",
        "pooler/bias",
        "mlm/output_bias",
        "bias",
    ):
        assert not opt_lib.applies_weight_decay(path), path
    assert param_groups.layer_depth("embeddings/layer_norm/gamma", 4) == 0
    assert param_groups.layer_depth("transformer_3/output/kernel", 4) == 4
    assert param_groups.layer_depth("classifier/dense/kernel", 4) == 5
    assert param_groups.count_layers(["a/transformer_0/x", "transformer_11/y", "pooler/k"]) == 12
    assert param_groups.layers_below_top(
        ["m/embeddings/e", "m/transformer_0/k", "m/transformer_1/k", "m/pooler/k"]
    ) == [3, 2, 1, 0]


def _tiny_classifier(tiny_config):
    import bert_tf

    return bert_tf.BertClassifier(bert_tf.BertEncoder(tiny_config), 3)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_weight_decay_and_layer_decay_with_zero_gradients(tiny_config, name):
    """Zero gradients: Adam/LAMB directions are 0, so only decoupled weight decay moves
    weights. AdamW: w <- w (1 - lr m wd); LAMB (trust ratio ||w|| / ||wd w|| = 1 / wd):
    w <- w (1 - lr m), m the layer multiplier 0.5 ** (L + 1 - depth), L = 2."""
    model = _tiny_classifier(tiny_config)
    lr, wd = 0.1, 0.2
    optimizer = opt_lib.create_optimizer(
        name,
        lr,
        num_train_steps=100,
        num_warmup_steps=0,
        weight_decay=wd,
        layer_decay=0.5,
        layers_below_top=param_groups.layers_below_top,
    )
    variables = model.trainable_variables
    before = {v.path: v.numpy().copy() for v in variables}
    optimizer.apply([tf.zeros_like(v) for v in variables], variables)
    checked = set()
    for v in variables:
        old, new = before[v.path], v.numpy()
        if not opt_lib.applies_weight_decay(v.path):
            np.testing.assert_array_equal(new, old, err_msg=v.path)
            checked.add("excluded")
            continue
        depth = param_groups.layer_depth(v.path, 2)
        multiplier = 0.5 ** (3 - depth)
        factor = 1 - lr * multiplier * (wd if name == "adamw" else 1.0)
        np.testing.assert_allclose(new, old * factor, rtol=1e-5, atol=1e-7, err_msg=v.path)
        checked.add(depth)
    assert checked == {"excluded", 0, 1, 2, 3}


def test_clipping_bounds_the_global_norm():
    grads = [tf.constant([3.0, 4.0]), tf.constant([[12.0]])]  # global norm 13
    assert float(opt_lib.clip_factor(grads, 1.0)) == pytest.approx(1 / 13, rel=1e-6)
    assert float(opt_lib.clip_factor([tf.constant([0.3, 0.4])], 1.0)) == 1.0  # norm 0.5
    assert opt_lib.clip_factor(grads, None) is None
    assert np.isnan(float(opt_lib.clip_factor([tf.constant([np.inf])], 1.0)))
    # LAMB clips the gradients themselves (Keras' order: clip, then update)
    lamb = opt_lib.create_optimizer("lamb", 1e-3, 10, clip_norm=1.0)
    clipped = lamb._clip_gradients(grads)
    assert float(tf.linalg.global_norm(clipped)) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(clipped[0].numpy(), [3 / 13, 4 / 13], rtol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_adamw_clipping_equals_updating_with_clipped_gradients(fused):
    """AdamW applies the clipping factor inside its update (no pass to scale the gradients):
    the result is the update with tf.clip_by_global_norm's gradients, unclipped, over steps
    whose norms are above and below the clip norm."""
    rng = np.random.default_rng(1)
    initial = [rng.normal(size=s).astype(np.float32) for s in ((5, 3), (3,))]
    steps = [[rng.normal(size=x.shape).astype(np.float32) * k for x in initial] for k in (4, 0.1)]
    results = []
    for clip_norm in (1.0, None):
        variables = [keras.Variable(x, name=n) for x, n in zip(initial, ("kernel", "bias"))]
        optimizer = opt_lib.AdamW(learning_rate=0.01, weight_decay=0.1, global_clipnorm=clip_norm)
        if not fused:
            optimizer._fused_update = lambda *args: False
        for grads in steps:
            grads = [tf.constant(g) for g in grads]
            if clip_norm is None:
                grads, _ = tf.clip_by_global_norm(grads, 1.0)
            optimizer.apply(grads, variables)
        results.append([v.numpy() for v in variables])
    for with_factor, pre_clipped in zip(*results):
        np.testing.assert_allclose(with_factor, pre_clipped, rtol=1e-6, atol=1e-7)
    assert not np.allclose(results[0][0], initial[0])


def test_lamb_step_matches_numpy_reference():
    w0 = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    g = np.array([[0.1, 0.3], [-0.2, 0.05]], np.float32)
    b0 = np.array([0.3, -0.1], np.float32)
    kernel = keras.Variable(w0, name="kernel")
    bias = keras.Variable(b0, name="bias")
    lr, wd, eps = 0.01, 0.1, 1e-6
    optimizer = opt_lib.Lamb(learning_rate=lr, weight_decay=wd, epsilon=eps)
    optimizer.apply([tf.constant(g), tf.constant(g[0])], [kernel, bias])

    def lamb(w, grad, decay):
        m_hat, v_hat = grad, grad**2  # first step, bias-corrected
        update = m_hat / (np.sqrt(v_hat) + eps)
        if not decay:
            return w - lr * update  # no decay, no trust ratio
        update = update + wd * w
        ratio = np.linalg.norm(w) / np.linalg.norm(update)
        return w - lr * ratio * update

    np.testing.assert_allclose(kernel.numpy(), lamb(w0, g, True), rtol=1e-5)
    np.testing.assert_allclose(bias.numpy(), lamb(b0, g[0], False), rtol=1e-5)


def _adam_reference(variant, w0, g, lr, wd, eps, steps):
    """NumPy AdamW in float64: decoupled decay, then the variant's Adam step."""
    w, m, v = w0.astype(np.float64), 0.0, 0.0
    for t in range(1, steps + 1):
        w = w * (1 - lr * wd)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        if variant == "torch":  # torch.optim.AdamW: eps on the corrected sqrt(v)
            w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + eps)
        elif variant == "keras":  # Keras Adam: eps on the uncorrected sqrt(v)
            w = w - lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + eps)
        else:  # google-research/bert: no bias correction
            w = w - lr * m / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize(
    "name,variant,epsilon",
    [("adamw", "torch", 1e-8), ("bert_adamw", "bert", 1e-6), ("keras_adamw", "keras", 1e-6)],
)
@pytest.mark.parametrize("fused", [True, False])
def test_adamw_variants_match_numpy_reference(name, variant, epsilon, fused):
    """Which name is which maths (and epsilon default). Gradients of 1e-7..1e-1: where
    epsilon enters matters for the small ones, so a variant mix-up fails here."""
    w0 = np.array([0.5, -1.0, 2.0, 0.3, -0.7], np.float32)
    g = np.array([0.1, -0.3, 0.0, 1e-7, -2e-6], np.float32)
    kernel = keras.Variable(w0, name="kernel")
    lr, wd = 0.01, 0.1
    optimizer = opt_lib.create_optimizer(
        name, lr, 100, 0, weight_decay=wd, end_learning_rate=lr, clip_norm=None
    )
    assert (optimizer.variant, optimizer.epsilon) == (variant, epsilon)
    if not fused:
        optimizer._fused_update = lambda *args: False
    for _ in range(3):
        optimizer.apply([tf.constant(g)], [kernel])
    expected = _adam_reference(variant, w0, g, lr, wd, epsilon, 3)
    np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-5, atol=1e-7)  # fp32
    others = [
        _adam_reference(o, w0, g, lr, wd, epsilon, 3)
        for o in ("torch", "keras", "bert")
        if o != variant
    ]
    for other in others:  # the references really differ on these gradients
        assert np.abs(other - expected).max() > 1e-4


def test_finetuning_defaults_to_torch_adamw():
    """What users of the Hugging Face recipe expect: torch AdamW maths, epsilon 1e-8."""
    from bert_tf.recipes.finetune_config import FinetuneConfig

    config = FinetuneConfig(task="tag", init_checkpoint="x", train_file="y", model_dir="z")
    assert (config.optimizer, config.adam_epsilon) == ("adamw", None)
    optimizer = opt_lib.create_optimizer(config.optimizer, 1e-3, 10, epsilon=config.adam_epsilon)
    assert (optimizer.variant, optimizer.epsilon) == ("torch", 1e-8)


@pytest.mark.parametrize("name", ["adamw", "bert_adamw", "lamb"])
def test_optimizer_config_round_trip(name):
    optimizer = opt_lib.create_optimizer(
        name,
        3e-4,
        1000,
        100,
        weight_decay=0.05,
        clip_norm=2.0,
        layer_decay=0.75,
        epsilon=1e-8,
        layers_below_top=param_groups.layers_below_top,
    )
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is type(optimizer)
    for key in (
        "weight_decay",
        "global_clipnorm",
        "layer_decay",
        "epsilon",
        "exclude_from_decay",
        "layers_below_top",
        "variant",
    ):
        if key == "variant" and name == "lamb":
            continue
        assert clone.get_config()[key] == optimizer.get_config()[key], key
    assert float(clone.learning_rate) == pytest.approx(0.0)  # schedule at step 0
    assert float(clone._learning_rate(550)) == pytest.approx(1.5e-4)


def test_layer_decay_needs_the_model_side_depths():
    with pytest.raises(ValueError, match="layer_decay needs layers_below_top"):
        opt_lib.create_optimizer("adamw", 1e-3, 10, layer_decay=0.9)
    assert opt_lib.lr_multipliers(["a", "b"], 0.5, lambda paths: [2, 0]) == [0.25, 1.0]
    with pytest.raises(ValueError, match="one int >= 0 per variable"):
        opt_lib.lr_multipliers(["a", "b"], 0.5, lambda paths: [1])


def test_bad_optimizer_name():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        opt_lib.create_optimizer("sgd", 1e-3, 10)


def _unfused_adamw(**kwargs):
    """Our AdamW with the fused kernel switched off: its element-wise ops."""
    optimizer = opt_lib.AdamW(**kwargs)
    optimizer._fused_update = lambda *args: False
    return optimizer


def _keras_adam(weight_decay, **kwargs):
    """keras.optimizers.Adam + our decoupled decay: the reference of variant "keras"."""
    optimizer = opt_lib.AdamW(weight_decay=weight_decay, **kwargs)
    optimizer._fused_update = lambda *args: False
    optimizer._plain_update = lambda g, v, lr: keras.optimizers.Adam.update_step(
        optimizer, g, v, lr
    )
    return optimizer


@pytest.mark.parametrize("variant", ["torch", "bert", "keras"])
def test_fused_adam_kernel_matches_plain_ops_over_steps(variant):
    """Dense and IndexedSlices (embedding-style) gradients, decayed and excluded variables,
    four steps under tf.function: the fused kernel gives the element-wise ops' results,
    and the "keras" variant gives keras.optimizers.Adam's."""
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=s).astype(np.float32) for s in ((6, 4), (4,), (10, 4))]
    grads = [
        (
            rng.normal(size=(6, 4)).astype(np.float32),
            rng.normal(size=(4,)).astype(np.float32),
            rng.normal(size=(2, 4)).astype(np.float32),
            rng.choice(10, 2, replace=False),
        )
        for _ in range(4)
    ]
    results = []
    makers = [opt_lib.AdamW, _unfused_adamw] + ([_keras_adam] if variant == "keras" else [])
    for make in makers:
        variables = [
            keras.Variable(x, name=n) for x, n in zip(initial, ("kernel", "bias", "table"))
        ]
        optimizer = make(learning_rate=0.01, weight_decay=0.1, epsilon=1e-6, variant=variant)

        @tf.function
        def step(g_kernel, g_bias, g_rows, rows):
            sparse = tf.IndexedSlices(g_rows, rows, tf.constant([10, 4]))
            optimizer.apply([g_kernel, g_bias, sparse], variables)

        for g_kernel, g_bias, g_rows, rows in grads:
            step(g_kernel, g_bias, g_rows, tf.constant(rows, tf.int32))
        results.append([v.numpy() for v in variables])
    for reference in results[1:]:
        for fused, expected in zip(results[0], reference):
            np.testing.assert_allclose(fused, expected, rtol=1e-6, atol=1e-6)  # fp32 rounding


def test_adamw_runs_one_fused_kernel_per_variable():
    """Clipping, weight decay and Adam: one XLA-compiled call per variable, no other pass
    over a variable (no separate decay, gradient scaling or TF Adam kernel)."""
    kernel = keras.Variable(np.ones((3, 2), np.float32), name="kernel")
    bias = keras.Variable(np.ones((2,), np.float32), name="bias")
    optimizer = opt_lib.AdamW(learning_rate=0.01, global_clipnorm=1.0)
    optimizer.build([kernel, bias])
    graph = (
        tf.function(lambda g, b: optimizer.apply([g, b], [kernel, bias]))
        .get_concrete_function(tf.TensorSpec([3, 2], tf.float32), tf.TensorSpec([2], tf.float32))
        .graph
    )
    graph_def = graph.as_graph_def()  # the update may sit in a cond's branch function
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    xla = {f.signature.name for f in graph_def.library.function if f.attr["_XlaMustCompile"].b}
    calls = [n for n in nodes if n.op in ("PartitionedCall", "StatefulPartitionedCall")]
    assert sum(n.attr["f"].func.name in xla for n in calls) == 2, sorted(xla)
    ops = [n.op for n in nodes]
    assert "ResourceApplyAdam" not in ops and "AssignSubVariableOp" not in ops
