"""The real training loop against transformers (issue 19, item 1): 50 steps of the tag task
through bert-tf's Trainer, set up as `bert_tf.finetune` sets it up (the task's features and
batches the recipe draws (`training_batches`) over 2 epochs, `create_optimizer` with warmup,
weight decay and clipping), dropout 0, against BertForTokenClassification trained with
torch AdamW + get_linear_schedule_with_warmup + clip_grad_norm_ on the same batches in the
same order: the two loss curves agree to ~1e-4."""

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="loop parity needs torch (CPU wheel)")
transformers = pytest.importorskip("transformers", reason="loop parity needs transformers")

from bert_tf.checkpoints.loader import assign_from_source  # noqa: E402
from bert_tf.checkpoints.sources import read_source  # noqa: E402
from bert_tf.models import BertEncoder, param_groups  # noqa: E402
from bert_tf.recipes.finetune_config import FinetuneConfig  # noqa: E402
from bert_tf.recipes.finetuning import training_batches  # noqa: E402
from bert_tf.tasks import get_task  # noqa: E402
from bert_tf.text.tokenizer import BertTokenizer  # noqa: E402
from bert_tf.training import optimization  # noqa: E402
from bert_tf.training.trainer import Trainer  # noqa: E402
from tests.parity import parity_harness as harness  # noqa: E402

STEPS, BATCH, EPOCHS = 50, 4, 2


def _task(minilm_dir, train_file, tmp_path):
    config = FinetuneConfig(
        task="tag",
        init_checkpoint=minilm_dir,
        train_file=train_file,
        model_dir=str(tmp_path / "run"),
        epochs=EPOCHS,
        batch_size=BATCH,
        max_seq_length=32,
        learning_rate=5e-5,
        weight_decay=0.01,
        warmup_proportion=0.1,
        dropout=0.0,
        seed=3,
    )
    tokenizer = BertTokenizer(vocab_file=f"{minilm_dir}/vocab.txt", lower_case=True)
    task = get_task("tag")(config, tokenizer)
    task.load()
    return config, task


def _bert_tf_losses(config, task, minilm_dir, batches, tmp_path):
    """The loss of every step through the Trainer, as bert_tf.finetune builds it."""
    source = read_source(minilm_dir)
    encoder = BertEncoder(
        dataclasses.replace(source.config, hidden_dropout=0.0, attention_dropout=0.0)
    )
    assign_from_source(encoder, source)
    model = task.build_model(encoder)
    optimizer = optimization.create_optimizer(
        config.optimizer,
        config.learning_rate,
        STEPS,
        int(STEPS * config.warmup_proportion),
        config.weight_decay,
        epsilon=config.adam_epsilon,
        clip_norm=config.clip_norm,
        layer_decay=config.layer_decay,
        layers_below_top=param_groups.layers_below_top,
    )
    head = [v.numpy() for v in (model.head.dense.kernel, model.head.dense.bias)]
    trainer = Trainer(
        model,
        task.objective,
        optimizer,
        checkpoint_dir=str(tmp_path / "ckpt"),
        checkpoint_every_steps=10_000,
        log_every_steps=1,
        progress_fn=None,
    )
    losses = []
    trainer.reporter.write = lambda split, step, values: losses.append(values["loss"])
    trainer.train(task.make_dataset(task.train_features, batches), STEPS)
    return head, losses


def _hf_losses(config, task, minilm_dir, batches, head):
    model = transformers.BertForTokenClassification.from_pretrained(
        minilm_dir,
        num_labels=len(task.label_names),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout=0.0,
        attn_implementation="eager",
    )
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(head[0].T))
        model.classifier.bias.copy_(torch.tensor(head[1]))
    recipe = harness.Recipe(
        learning_rate=config.learning_rate,
        total_steps=STEPS,
        warmup_steps=int(STEPS * config.warmup_proportion),
        weight_decay=config.weight_decay,
    )
    run = harness.HfRun(harness.Pair("tag", None, model, None, []), recipe)
    losses = []
    for inputs, labels in task.make_dataset(task.train_features, batches).take(STEPS):
        batch = {
            "input_ids": inputs["input_word_ids"],
            "attention_mask": inputs["input_mask"],
            "token_type_ids": inputs["input_type_ids"],
        }
        batch = {k: torch.from_numpy(v.numpy().astype(np.int64)) for k, v in batch.items()}
        batch["labels"] = torch.from_numpy(
            np.where(labels.numpy() < 0, -100, labels.numpy()).astype(np.int64)
        )
        losses.append(run.step({"hf": batch})[0])
    return losses


@pytest.mark.slow
def test_fifty_trainer_steps_follow_the_transformers_loss_curve(minilm_dir, tmp_path):
    from demo_data import assets

    train_file = harness.write_bbc_conll(
        str(tmp_path / "train.txt"), assets.bbc_news_dir(), count=STEPS * BATCH // EPOCHS
    )
    config, task = _task(minilm_dir, train_file, tmp_path)
    steps_per_epoch = math.ceil(len(task.train_features) / BATCH)
    assert steps_per_epoch * EPOCHS == STEPS
    batches = training_batches(config, task.train_features.lengths)
    head, ours = _bert_tf_losses(config, task, minilm_dir, batches, tmp_path)
    theirs = _hf_losses(config, task, minilm_dir, batches, head)
    assert len(ours) == len(theirs) == STEPS
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    assert np.mean(ours[-10:]) < 0.6 * np.mean(ours[:10])  # it learns
