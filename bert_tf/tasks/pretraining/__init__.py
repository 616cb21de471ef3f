"""Pre-training as a task: its model (`BertPretrainer`), its objective (masked-LM loss +
next-sentence loss) and metrics. The data are the pre-training records of
bert_tf/data/pretraining/create.py; bert_tf/recipes/pretraining/ runs it.

Shape legend: B = batch (per replica), P = max predictions per sequence, V = vocab size.

    labels  = {"masked_lm_ids": int [B, P], "masked_lm_weights": float [B, P] (1 = a real
               prediction, 0 = padding), "next_sentence_labels": int [B] or [B, 1]
               (0 = B follows A, 1 = B is random, the original BERT convention)}
    outputs = {"mlm_logits": float [B, P, V], "nsp_logits": float [B, 2]}   (BertPretrainer)

MLM loss = sum(w * CE) / sum(w) where the denominator is the weight sum over the GLOBAL batch
(all replicas), and the NSP loss is the mean CE over the global batch, so that summing the
per-replica losses (what a distribution strategy does with gradients) gives exactly the
single-device loss of the global batch, however the masked predictions are spread across
replicas. The total loss is mlm_loss + nsp_loss (as google-research/bert).

Packed rows (bert_tf/data/pretraining/packing.py): `nsp_logits` [B, S, 2],
`next_sentence_labels` [B, S] and `next_sentence_weights` [B, S] (1 = a real sequence, 0 = an
unused slot). The NSP loss is then sum(w * CE) / global sum(w): the mean over the global
batch's sequences, exactly as unpacked; the MLM terms are per masked token either way. So a
packed batch and the unpacked batch of the same sequences have the same losses, metrics
and gradients.

Metrics are returned as (numerator, denominator) sums so that a trainer can accumulate them
over steps and replicas and divide once: masked_lm_accuracy (weighted by masked_lm_weights),
next_sentence_accuracy, masked_lm_loss, next_sentence_loss.

`PretrainingObjective` is the Trainer's objective (bert_tf/training/objective.py: the Trainer
does the cross-replica sums); the free functions (`pretraining_loss`, ...) all-reduce
themselves and are for use outside the Trainer.
"""

import tensorflow as tf

from bert_tf.models.pretrainer import BertPretrainer
from bert_tf.tasks.registry import register_task
from bert_tf.training.objective import Ratio, replica_sum

METRIC_NAMES = (
    "masked_lm_accuracy",
    "next_sentence_accuracy",
    "masked_lm_loss",
    "next_sentence_loss",
)


def _nsp_labels(labels):
    nsp = tf.cast(labels["next_sentence_labels"], tf.int32)
    return tf.reshape(nsp, [-1])  # [B]


def _mlm_terms(labels, outputs):
    logits = tf.cast(outputs["mlm_logits"], tf.float32)  # [B, P, V]
    ids = tf.cast(labels["masked_lm_ids"], tf.int32)  # [B, P]
    weights = tf.cast(labels["masked_lm_weights"], tf.float32)  # [B, P]
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)  # [B, P]
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32)
    return ce, correct, weights


def _nsp_terms(labels, outputs):
    """-> (CE, correct, weights), each [B] (unpacked) or [B*S] (packed rows, flattened);
    weights is None for unpacked batches (every example counts once)."""
    logits = tf.cast(outputs["nsp_logits"], tf.float32)  # [B, 2] or [B, S, 2]
    logits = tf.reshape(logits, [-1, 2])  # [B(*S), 2]
    nsp = _nsp_labels(labels)  # [B(*S)]
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=nsp, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), nsp), tf.float32)
    weights = labels.get("next_sentence_weights")
    if weights is not None:
        weights = tf.reshape(tf.cast(weights, tf.float32), [-1])  # [B*S]
    return ce, correct, weights


def _nsp_sums(labels, outputs):
    """(sum CE, sum correct, count) over this replica's sequences."""
    ce, correct, weights = _nsp_terms(labels, outputs)
    if weights is None:
        return tf.reduce_sum(ce), tf.reduce_sum(correct), tf.cast(tf.size(ce), tf.float32)
    return (tf.reduce_sum(weights * ce), tf.reduce_sum(weights * correct), tf.reduce_sum(weights))


def masked_lm_loss(labels, outputs, global_weight_sum=None):
    """This replica's share of the global-batch MLM loss: sum(w * CE) / global sum(w)."""
    ce, _, weights = _mlm_terms(labels, outputs)
    if global_weight_sum is None:
        global_weight_sum = replica_sum(tf.reduce_sum(weights))
    return tf.reduce_sum(weights * ce) / tf.maximum(global_weight_sum, 1e-5)


def next_sentence_loss(labels, outputs, global_count=None):
    """This replica's share of the global-batch mean NSP loss (over sequences)."""
    ce_sum, _, count = _nsp_sums(labels, outputs)
    if global_count is None:
        global_count = replica_sum(count)
    return ce_sum / tf.maximum(global_count, 1.0)


def pretraining_loss(labels, outputs):
    """Total loss (this replica's share): masked_lm_loss + next_sentence_loss."""
    return masked_lm_loss(labels, outputs) + next_sentence_loss(labels, outputs)


def metric_sums(labels, outputs):
    """{metric name: (numerator, denominator)} summed over this replica's batch.

    The metric value is sum(numerators) / sum(denominators) over all steps and replicas."""
    mlm_ce, mlm_correct, weights = _mlm_terms(labels, outputs)
    nsp_ce, nsp_correct, count = _nsp_sums(labels, outputs)
    weight_sum = tf.reduce_sum(weights)
    return {
        "masked_lm_accuracy": (tf.reduce_sum(weights * mlm_correct), weight_sum),
        "masked_lm_loss": (tf.reduce_sum(weights * mlm_ce), weight_sum),
        "next_sentence_accuracy": (nsp_correct, count),
        "next_sentence_loss": (nsp_ce, count),
    }


class PretrainingObjective:
    """The pre-training objective in the form `bert_tf.training.trainer.Trainer` wants
    (see bert_tf/training/objective.py).

    `compute_loss(labels, outputs)` returns (loss, metrics) for THIS replica's batch with no
    cross-replica reduction (the Trainer does that): loss = [Ratio(sum(w * CE_mlm), sum(w)),
    CE_nsp per example [B]], i.e. the MLM loss normalised by the weight sum over the global
    batch plus the mean NSP loss over the global batch; metrics are (numerator, denominator)
    sums. `__call__` gives the total loss of a batch on one device (for eager use and tests).
    """

    name = "pretraining"
    metric_names = METRIC_NAMES

    def compute_loss(self, labels, outputs):
        mlm_ce, mlm_correct, weights = _mlm_terms(labels, outputs)
        weight_sum = tf.reduce_sum(weights)
        nsp_sum, nsp_correct, count = _nsp_sums(labels, outputs)
        if "next_sentence_weights" in labels:  # packed rows: mean over real sequences
            nsp_loss = Ratio(nsp_sum, count)
        else:
            nsp_loss, _, _ = _nsp_terms(labels, outputs)  # per example [B]
        loss = [Ratio(tf.reduce_sum(weights * mlm_ce), weight_sum), nsp_loss]
        metrics = {
            "masked_lm_accuracy": Ratio(tf.reduce_sum(weights * mlm_correct), weight_sum),
            "masked_lm_loss": Ratio(tf.reduce_sum(weights * mlm_ce), weight_sum),
            "next_sentence_accuracy": Ratio(nsp_correct, count),
            "next_sentence_loss": Ratio(nsp_sum, count),
        }
        return loss, metrics

    def __call__(self, labels, outputs):
        return pretraining_loss(labels, outputs)


@register_task("pretraining", finetuning=False)
class PretrainingTask:
    """What pre-training declares as a task, as the fine-tuning tasks do: its name (the
    config.json "task" type), its model on an encoder, its objective and metrics."""

    main_metric = "masked_lm_accuracy"
    metric_names = METRIC_NAMES

    @staticmethod
    def build_model(encoder):
        """The encoder with the masked-LM and next-sentence heads."""
        return BertPretrainer(encoder)

    @classmethod
    def model_from_info(cls, encoder, task_info=None):
        """The model a config.json "task" {"type": "pretraining"} describes."""
        return cls.build_model(encoder)

    @property
    def objective(self):
        return PretrainingObjective()
