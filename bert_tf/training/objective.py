"""The contract between the Trainer and an objective, and the reductions that implement it.

`objective` is any object with
  * `metric_names`: a sequence of str (the metrics `compute_loss` returns; must not use the
    names the trainer reports itself: "loss", "learning_rate", "examples_per_second",
    "grad_norm");
  * `compute_loss(labels, outputs) -> (loss, metrics)`, called inside a replica with THIS
    replica's micro-batch: `labels` is the second element of each dataset element and
    `outputs = model(features, training=...)`. Called in train and eval alike.

`loss` is one of (all float; cast to float32 by the trainer):
  * a vector [B]: per-example losses. The trainer divides their sum by the number of
    examples in the GLOBAL batch (all replicas), so the result is the same for any replica
    count and any split of the batch.
  * `Ratio(numerator, denominator)` (or a dict {"numerator", "denominator"}): the loss is
    sum(numerator) / sum(denominator) over the global batch (e.g. an MLM loss
    sum(w * CE) / sum(w), where the masked tokens are spread unevenly across replicas). The
    trainer all-reduces the denominator; do NOT all-reduce in the objective.
  * a scalar: the mean over THIS replica's batch; weighted by its share of the global batch.
  * a list of the above: summed (e.g. `[Ratio(mlm_sum, mlm_weights), nsp_per_example]`).
With `grad_accum_steps = k`, each micro-batch is normalized as above over the global
micro-batch and weighted 1/k (exact for per-example losses; for `Ratio` each micro-batch's
denominator counts separately).

`metrics` is a dict {name: value} with a value per name in `metric_names`, each one of
  * a 2-tuple or `Ratio` (numerator, denominator) of scalars summed over this replica's
    batch: the reported metric is sum(numerators) / sum(denominators) over all replicas and
    all steps of the logging window (train) or the whole evaluation (eval);
  * a vector [B] (per-example values): reported as their mean over all examples;
  * a scalar: the mean over this replica's batch (weighted by the batch size).
Use the (numerator, denominator) form for accuracies so they are exact.
"""

import collections

import tensorflow as tf

Ratio = collections.namedtuple("Ratio", ["numerator", "denominator"])
Ratio.__doc__ = "sum(numerator) / sum(denominator) over the global batch (see objective.py)."

RESERVED_NAMES = ("loss", "learning_rate", "examples_per_second", "grad_norm")


def is_ratio(value):
    return (
        isinstance(value, Ratio)
        or (isinstance(value, dict) and set(value) == {"numerator", "denominator"})
        or (isinstance(value, tuple) and len(value) == 2)
    )


def ratio_parts(value):
    if isinstance(value, dict):
        return value["numerator"], value["denominator"]
    return value[0], value[1]


def _f32(x):
    return tf.cast(x, tf.float32)


def replica_sum(value):
    """Sum of `value` over the replicas of the current distribution strategy (identity with
    one replica or outside a replica context): the one replica sum of bert_tf."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def local_batch_size(features):
    first = tf.nest.flatten(features)[0]
    return _f32(tf.shape(first)[0])


def loss_share(loss, local_batch, global_batch):
    """This replica's share of the global-batch loss (summing shares gives the loss)."""
    if isinstance(loss, list):
        return tf.add_n([loss_share(term, local_batch, global_batch) for term in loss])
    if is_ratio(loss):
        num, den = ratio_parts(loss)
        global_den = replica_sum(tf.stop_gradient(tf.reduce_sum(_f32(den))))
        return tf.math.divide_no_nan(tf.reduce_sum(_f32(num)), global_den)
    loss = _f32(loss)
    if loss.shape.rank == 0:  # a mean: NaN for an empty replica batch, so weight it out
        return tf.math.divide_no_nan(
            tf.where(local_batch > 0, loss, 0.0) * local_batch, global_batch
        )
    if loss.shape.rank != 1:
        raise ValueError(
            f"objective loss must be a scalar, a per-example vector [B], a Ratio "
            f"or a list of those; got a tensor of shape {loss.shape}"
        )
    return tf.math.divide_no_nan(tf.reduce_sum(loss), global_batch)


def metric_sums(metrics, names, local_batch):
    """[2M] vector: numerators then denominators of this replica's metrics."""
    missing = [n for n in names if n not in metrics]
    if missing:
        raise ValueError(
            f"objective.compute_loss returned no value for metric(s) {missing}; "
            f"it returned {sorted(metrics)}"
        )
    nums, dens = [], []
    for name in names:
        value = metrics[name]
        if is_ratio(value):
            num, den = ratio_parts(value)
            nums.append(tf.reduce_sum(_f32(num)))
            dens.append(tf.reduce_sum(_f32(den)))
        else:
            value = _f32(value)
            if value.shape.rank == 0:
                # An empty replica batch gives NaN means: weight them out.
                nums.append(tf.where(local_batch > 0, value * local_batch, 0.0))
                dens.append(local_batch)
            else:
                nums.append(tf.reduce_sum(value))
                dens.append(_f32(tf.size(value)))
    return tf.stack(nums + dens) if names else tf.zeros([0], tf.float32)


def check_metric_names(names):
    """ValueError if an objective's metric names clash with the trainer's own."""
    clash = [n for n in names if n in RESERVED_NAMES]
    if clash:
        raise ValueError(
            f"objective.metric_names {clash} clash with the names the trainer "
            f"reports itself: {', '.join(RESERVED_NAMES)}"
        )
