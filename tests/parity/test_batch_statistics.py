"""The fine-tuning batches are drawn as the reference recipe draws them (issue 19).

The cause of the tag gap found on real data (Brown names, docs/benchmarks.md): bert-tf sorted
each chunk of 50 batches by length, so on a set of 1,500 sentences the same sentences shared a
batch every epoch and short and long ones never met (entity F1 0.515 +- 0.051 vs the
reference's 0.597 +- 0.008). The reference (transformers' Trainer, a shuffled DataLoader)
draws a fresh uniform permutation every epoch; the step- and loop-level parity tests could not
see the difference because they feed both libraries the same batches. These tests pin the
statistics of the batches `bert_tf.finetune` trains on against those of a uniform
permutation: any two examples share a batch with probability (B - 1) / (N - 1) per epoch,
whatever their lengths."""

import numpy as np
import tensorflow as tf

from bert_tf.recipes.finetune_config import FinetuneConfig
from bert_tf.recipes.finetuning import train_packing, training_batches

N, B, EPOCHS = 320, 32, 60


def _config(**changes):
    values = dict(
        task="tag",
        init_checkpoint="unused",
        train_file="unused",
        model_dir="unused",
        batch_size=B,
        epochs=EPOCHS,
        seed=5,
    )
    return FinetuneConfig(**{**values, **changes})


def _lengths():
    """Half the examples short (6 tokens), half long (60), interleaved."""
    return np.where(np.arange(N) % 2 == 0, 6, 60)


def _share_rate(batches, a, b):
    """Per epoch, the fraction of (a, b) pairs (a in group a, b in group b) in one batch."""
    together = 0
    for batch in batches:
        in_batch = np.zeros(N, bool)
        in_batch[batch] = True
        together += int(in_batch[a].sum()) * int(in_batch[b].sum())
    return together / (len(a) * len(b) * EPOCHS)


def test_every_epoch_is_a_fresh_permutation_cut_into_batches():
    batches = training_batches(_config(), _lengths())
    per_epoch = -(-N // B)
    assert len(batches) == per_epoch * EPOCHS
    epochs = [batches[e * per_epoch : (e + 1) * per_epoch] for e in range(EPOCHS)]
    for epoch in epochs:
        assert sorted(np.concatenate(epoch).tolist()) == list(range(N))
    first, second = (np.concatenate(e) for e in epochs[:2])
    assert first.tolist() != second.tolist()  # reshuffled every epoch
    assert training_batches(_config(), _lengths())[7].tolist() == batches[7].tolist()  # seeded


def test_short_and_long_examples_share_batches_as_in_a_uniform_permutation():
    lengths = _lengths()
    short, long_ = np.flatnonzero(lengths == 6), np.flatnonzero(lengths == 60)
    expected = (B - 1) / (N - 1)  # ~0.097
    batches = training_batches(_config(), lengths)
    assert abs(_share_rate(batches, short, long_) - expected) < 0.01
    assert abs(_share_rate(batches, short, short) - expected) < 0.01
    # Every batch mixes both kinds, as random batches of 32 do (a pure one: p ~ 1e-9).
    assert all(0 < np.mean(lengths[b] == 6) < 1 for b in batches)


def test_group_by_length_is_the_opt_in_that_changes_the_statistics():
    lengths = _lengths()
    short, long_ = np.flatnonzero(lengths == 6), np.flatnonzero(lengths == 60)
    batches = training_batches(_config(group_by_length=True), lengths)
    assert _share_rate(batches, short, long_) < 0.01  # they (almost) never meet
    assert _share_rate(batches, short, short) > 0.15  # and the short ones meet twice as often


def test_random_batches_train_packed_grouped_ones_do_not():
    """The recipe's compute choice for random batches (bert_tf/models/row_packing.py): packed
    into rows of max_seq_length; not for batches already grouped by length."""
    strategy = tf.distribute.get_strategy()
    assert train_packing(_config(batch_size=32, max_seq_length=64), strategy) == 64
    assert train_packing(_config(group_by_length=True), strategy) == 0
