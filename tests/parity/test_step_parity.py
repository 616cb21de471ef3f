"""Step-level parity with transformers + PyTorch, per task head (issue 19, item 1).

The same MiniLM weights and the same new head on both sides, dropout off, the same batch:
the loss, every gradient (by HF parameter name) and every weight agree after 1 and after 3
AdamW steps (linear warmup/decay, weight decay without biases/LayerNorm, clipping at 1.0),
bert-tf's `create_optimizer("adamw")` against torch.optim.AdamW + HF's scheduler. The harness
is tests/parity/parity_harness.py. The default suite runs the tag head; the others are slow.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="step parity needs torch (CPU wheel)")
transformers = pytest.importorskip("transformers", reason="step parity needs transformers")

from tests.parity import parity_harness as harness  # noqa: E402  (after the skips: it imports torch)


def zero_gradient(task, name):
    """Tensors whose gradient is 0 mathematically, so both sides hold float noise, which
    Adam may normalise to a step of up to lr: attention key biases (a constant added to all
    scores of a query) and the output bias of a softmax over positions or choices (added to
    every one): squad's start/end bias, multiple choice's score bias."""
    return (
        "attention.self.key.bias" in name
        or (task == "multiple_choice" and name == "classifier.bias")
        or (task.startswith("squad") and name == "qa_outputs.bias")
    )


LOSS_TOL = 1e-5  # absolute
GRAD_TOL = 5e-5  # relative to the tensor's largest |gradient| (see relative_errors)
WEIGHT_TOL = 1e-5  # absolute, every weight
# ||change of bert-tf's weights - change of HF's|| / ||change of HF's|| over the model. Not
# per element: where |gradient| is near float noise, Adam's step is +-lr with a random sign.
UPDATE_TOL = 1e-2


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return transformers.BertTokenizerFast.from_pretrained(minilm_dir)


def _check_steps(task, minilm_dir, tokenizer, steps=3, check_weights_at=(1, 3), recipe=None):
    """Trains both sides `steps` steps on one batch; loss and gradients compared at every
    step, weights after the steps in `check_weights_at`. Returns the losses."""
    pair = harness.build_pair(task, minilm_dir)
    batch = harness.make_batch(task, tokenizer)
    recipe = recipe or harness.Recipe(warmup_steps=1, total_steps=4)
    tf_run, hf_run = harness.TfRun(pair, recipe), harness.HfRun(pair, recipe)
    start = hf_run.weights()
    assert set(tf_run.weights()) <= set(start)
    losses = []
    for step in range(1, steps + 1):
        tf_loss, tf_grads = tf_run.step(batch)
        hf_loss, hf_grads = hf_run.step(batch)
        losses.append((tf_loss, hf_loss))
        assert abs(tf_loss - hf_loss) < LOSS_TOL, (step, tf_loss, hf_loss)
        assert set(tf_grads) == set(hf_grads), set(tf_grads) ^ set(hf_grads)
        errors = {
            n: e
            for n, e in harness.relative_errors(tf_grads, hf_grads).items()
            if not zero_gradient(task, n)
        }
        worst = max(errors, key=errors.get)
        assert errors[worst] < GRAD_TOL, (step, worst, errors[worst])
        if step in check_weights_at:
            _check_weights(
                tf_run.weights(),
                hf_run.weights(),
                start,
                step,
                lambda n: zero_gradient(task, n),
                recipe.learning_rate,
            )
    return losses


def _check_weights(tf_w, hf_w, start, step, noise_only, learning_rate):
    for name in tf_w:
        tol = 2 * step * learning_rate if noise_only(name) else WEIGHT_TOL
        np.testing.assert_allclose(
            tf_w[name], hf_w[name], rtol=0, atol=tol, err_msg=f"{name} after step {step}"
        )
    tf_d, hf_d = harness.updates(tf_w, start), harness.updates(hf_w, start)
    tf_d = {n: d for n, d in tf_d.items() if not noise_only(n)}
    moved = float(np.sqrt(sum(np.sum(hf_d[n] ** 2) for n in tf_d)))
    off = float(np.sqrt(sum(np.sum((tf_d[n] - hf_d[n]) ** 2) for n in tf_d)))
    assert off <= UPDATE_TOL * moved, (step, off, moved)


def test_tag_head_steps_match_transformers(minilm_dir, tokenizer):
    """BertForTokenClassification, labels on first pieces only (-100 elsewhere); weights
    checked after 1 and after 3 steps. With one warmup step the first update has lr 0 on
    both sides (HF's scheduler steps after the optimizer), so steps 2-3 move the weights."""
    losses = _check_steps("tag", minilm_dir, tokenizer)
    assert losses[2][1] < losses[0][1] - 0.05  # it trains: the loss falls


@pytest.mark.slow
@pytest.mark.parametrize("task", [t for t in harness.TASKS if t != "tag"])
def test_task_head_steps_match_transformers(minilm_dir, tokenizer, task):
    _check_steps(task, minilm_dir, tokenizer)
