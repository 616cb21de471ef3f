"""bert-tf's "adamw" recipe against torch.optim.AdamW + transformers' linear schedule +
clip_grad_norm_, on tensors (no model): the same weights after every step, gradients from
1e-8 to 1 (where Adam's epsilon placement shows), decayed and excluded (bias) variables, the
learning rate at step 0, through warmup and decay, and at the end."""

import keras
import numpy as np
import pytest
import tensorflow as tf

torch = pytest.importorskip("torch", reason="optimizer parity needs torch (CPU wheel)")
transformers = pytest.importorskip("transformers", reason="needs transformers' schedules")

from bert_tf.recipes.finetuning import warmup_steps  # noqa: E402
from bert_tf.training import optimization  # noqa: E402

LR, WARMUP, TOTAL, WD = 1e-3, 3, 10, 0.01


def _hf_schedule_lrs():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=LR)
    sched = transformers.get_linear_schedule_with_warmup(opt, WARMUP, TOTAL)
    lrs = []
    for _ in range(TOTAL + 2):
        lrs.append(opt.param_groups[0]["lr"])  # the lr the next optimizer.step() uses
        opt.step()
        sched.step()
    return lrs


def test_schedule_matches_transformers_linear_warmup():
    """lr of update k (k = 0, 1, ...): 0 for the first (both), LR * k / WARMUP, then linear
    to 0 at TOTAL and 0 after."""
    schedule = optimization.WarmupLinearDecay(LR, WARMUP, TOTAL)
    ours = [float(schedule(k)) for k in range(TOTAL + 2)]
    np.testing.assert_allclose(ours, _hf_schedule_lrs(), rtol=1e-6, atol=1e-12)
    assert ours[0] == 0.0 and ours[TOTAL] == 0.0


def test_adamw_steps_match_torch():
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.integers(-8, 1, size=(6, 5))  # 1e-8 .. 1
    kernel0 = rng.normal(size=(6, 5)).astype(np.float32)
    bias0 = rng.normal(size=(5,)).astype(np.float32)
    grads = [
        (
            (rng.normal(size=(6, 5)) * scales).astype(np.float32),
            (rng.normal(size=(5,)) * 1e-6).astype(np.float32),
        )
        for _ in range(6)
    ]
    grads[2] = (grads[2][0] * 50.0, grads[2][1])  # a clipped step

    kernel, bias = keras.Variable(kernel0, name="kernel"), keras.Variable(bias0, name="bias")
    ours = optimization.create_optimizer("adamw", LR, TOTAL, WARMUP, weight_decay=WD, clip_norm=1.0)
    tk, tb = torch.nn.Parameter(torch.tensor(kernel0)), torch.nn.Parameter(torch.tensor(bias0))
    theirs = torch.optim.AdamW(
        [{"params": [tk], "weight_decay": WD}, {"params": [tb], "weight_decay": 0.0}],
        lr=LR,
        eps=1e-8,
    )
    sched = transformers.get_linear_schedule_with_warmup(theirs, WARMUP, TOTAL)
    for step, (gk, gb) in enumerate(grads, 1):
        ours.apply([tf.constant(gk), tf.constant(gb)], [kernel, bias])
        tk.grad, tb.grad = torch.tensor(gk), torch.tensor(gb)
        torch.nn.utils.clip_grad_norm_([tk, tb], 1.0)
        theirs.step()
        sched.step()
        for mine, other in ((kernel, tk), (bias, tb)):
            np.testing.assert_allclose(
                mine.numpy(),
                other.detach().numpy(),
                rtol=0,
                atol=1e-6,
                err_msg=f"{mine.name} step {step}",
            )
    moved = np.abs(kernel.numpy() - kernel0)
    # as in torch, weights with 1e-8 gradients move about as far as those with 1e-1 ones
    assert np.median(moved[scales <= 1e-7]) > 0.3 * np.median(moved[scales >= 1e-1])


def test_warmup_steps_round_up_as_transformers():
    """--warmup_proportion=0.1 of 265 steps is 27 warmup steps: transformers'
    TrainingArguments.get_warmup_steps takes ceil(total * ratio) for a ratio < 1."""
    expected = {1: 1, 9: 1, 10: 1, 11: 2, 265: 27, 1001: 101}
    assert {n: warmup_steps(n, 0.1) for n in expected} == expected
