"""A custom training loop that knows nothing about BERT: distribution, gradient accumulation,
clipping, loss scaling, checkpoints with automatic resume, NaN stop, progress and TensorBoard.

    strategy = distribute.create_strategy("mirrored")
    with strategy.scope():
        model = build_model()                       # or pass a zero-argument callable
        optimizer = optimization.create_optimizer("adamw", 1e-4, total_steps, warmup)
    trainer = Trainer(model, objective, optimizer, strategy=strategy,
                      checkpoint_dir=f"{model_dir}/checkpoints", log_dir=f"{model_dir}/logs")
    trainer.train(train_dataset, total_steps, eval_dataset=eval_ds, eval_every_steps=1000)
    results = trainer.evaluate(eval_ds)             # {"loss": ..., <metric names>: ...}

THE OBJECTIVE CONTRACT
----------------------
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

THE DATA
--------
`dataset` is a `tf.data.Dataset` of `(features, labels)` batched to the GLOBAL micro-batch
size (optimizer batch / grad_accum_steps), repeated as needed (train must yield at least
total_steps * grad_accum_steps elements), or a callable `fn(tf.distribute.InputContext)`
returning this input pipeline's dataset batched to the PER-REPLICA size
(`strategy.distribute_datasets_from_function`). A static global batch that is not
divisible by the number of replicas is a one-line ValueError. On resume from step s the
trainer skips the elements the first s steps used (s * grad_accum_steps, times the local
replicas per pipeline for a callable), so a deterministic pipeline (fixed seeds) continues
exactly where the interrupted run was.

CHECKPOINTS AND RESUME
----------------------
`tf.train.Checkpoint(model=..., optimizer=..., step=<int64>, rng=[...])` in
`checkpoint_dir`, files `ckpt-<step>`, the newest `keep_checkpoints` kept, saved every
`checkpoint_every_steps` and at the end. `rng` holds the model's dropout RNG states (Keras
SeedGenerator variables), so together with the data skip below a resumed run draws the same
dropout masks, sees the same batches and applies the same updates as an uninterrupted one.
At construction the trainer restores the newest checkpoint (weights, optimizer state and
schedule step, RNG, step) if there is one; otherwise it calls `init_fn(model)` (e.g. load
pre-trained encoder weights). TF writes the `checkpoint` index file only after a save's
data is complete, so a run killed at any moment (SIGKILL included) and restarted with the
same command continues from the last complete checkpoint. If the newest checkpoint does not
restore (e.g. a damaged data file), the next older one is tried, and so on; the fallback is
reported in one progress line and nothing is deleted. If none restores (corrupt, or from a
different model), `CheckpointError` is raised and nothing in the directory is touched. A save
that fails (e.g. a full disk) raises `CheckpointWriteError` naming the last good checkpoint.

A non-finite loss (or, without loss scaling, gradient norm) stops training with
`NonFiniteLossError` naming the step and the loss; the bad update is never applied and no
checkpoint is written, so the last checkpoint holds the last good state.

Progress (every `log_every_steps`, one line to `progress_fn`):
  step 200/1000 (20.0%) loss=2.3456 accuracy=0.6100 lr=9.0e-05 grad_norm=1.23 ex/s=120.5 eta=0:06:40
and TensorBoard scalars under `log_dir/train` and `log_dir/eval`. In a multi-worker cluster
only the chief writes checkpoints and summaries (see `distribute.write_dir`).
"""

import collections
import datetime
import os
import time

import keras
import tensorflow as tf

from bert_tf.errors import BertTfError
from bert_tf.training import checkpoint_state, distribute

Ratio = collections.namedtuple("Ratio", ["numerator", "denominator"])
Ratio.__doc__ = "sum(numerator) / sum(denominator) over the global batch (see trainer.py)."

RESERVED_NAMES = ("loss", "learning_rate", "examples_per_second", "grad_norm")


class CheckpointError(BertTfError, RuntimeError):
    """A checkpoint in the checkpoint directory cannot be restored into this model."""


class CheckpointWriteError(BertTfError, OSError):
    """A checkpoint could not be written (e.g. the disk is full); older ones are intact."""


class NonFiniteLossError(BertTfError, RuntimeError):
    """Training produced a NaN/Inf loss or gradient; the bad update was not applied."""


def _is_ratio(value):
    return isinstance(value, Ratio) or (
        isinstance(value, dict) and set(value) == {"numerator", "denominator"}) or (
        isinstance(value, tuple) and len(value) == 2)


def _ratio_parts(value):
    if isinstance(value, dict):
        return value["numerator"], value["denominator"]
    return value[0], value[1]


def _f32(x):
    return tf.cast(x, tf.float32)


def _replica_sum(value):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _local_batch_size(features):
    first = tf.nest.flatten(features)[0]
    return _f32(tf.shape(first)[0])


def _loss_share(loss, local_batch, global_batch):
    """This replica's share of the global-batch loss (summing shares gives the loss)."""
    if isinstance(loss, list):
        return tf.add_n([_loss_share(term, local_batch, global_batch) for term in loss])
    if _is_ratio(loss):
        num, den = _ratio_parts(loss)
        global_den = _replica_sum(tf.stop_gradient(tf.reduce_sum(_f32(den))))
        return tf.math.divide_no_nan(tf.reduce_sum(_f32(num)), global_den)
    loss = _f32(loss)
    if loss.shape.rank == 0:   # a mean: NaN for an empty replica batch, so weight it out
        return tf.math.divide_no_nan(tf.where(local_batch > 0, loss, 0.0) * local_batch,
                                     global_batch)
    if loss.shape.rank != 1:
        raise ValueError(f"objective loss must be a scalar, a per-example vector [B], a Ratio "
                         f"or a list of those; got a tensor of shape {loss.shape}")
    return tf.math.divide_no_nan(tf.reduce_sum(loss), global_batch)


def _metric_sums(metrics, names, local_batch):
    """[2M] vector: numerators then denominators of this replica's metrics."""
    missing = [n for n in names if n not in metrics]
    if missing:
        raise ValueError(f"objective.compute_loss returned no value for metric(s) {missing}; "
                         f"it returned {sorted(metrics)}")
    nums, dens = [], []
    for name in names:
        value = metrics[name]
        if _is_ratio(value):
            num, den = _ratio_parts(value)
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


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"   # what TensorBoard's scalar dashboard reads
    return metadata.SerializeToString()


def _write_scalar(name, value):
    """tf.summary.scalar without needing the tensorboard package installed."""
    tf.summary.write(name, tf.constant(float(value), tf.float32), metadata=_scalar_metadata())


def _fmt_duration(seconds):
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Trainer:
    """Trains `model` on `objective` with `optimizer` under `strategy` (see the module doc).

    model, optimizer: created under `strategy.scope()`, or zero-argument callables the
      trainer calls inside the scope. Optimizers from `optimization.create_optimizer` are
      recommended (global-norm clipping after the cross-replica sum); any Keras optimizer
      works on one replica. With the "mixed_float16" policy the optimizer is wrapped in a
      `keras.optimizers.LossScaleOptimizer` unless it already is one.
    checkpoint_dir: where checkpoints live (required; restored from automatically).
    log_dir: TensorBoard root (`train/` and `eval/` inside); None = no summaries.
    steps_per_loop: optimizer steps per tf.function call (fewer Python round trips).
    grad_accum_steps: micro-batches per optimizer step; each dataset element is one
      micro-batch, so the optimizer batch is grad_accum_steps x the dataset batch.
    progress_fn: called with one progress line (str); None = silent.
    init_fn: `init_fn(model)`, called only when `checkpoint_dir` has no checkpoint.
    """

    def __init__(self, model, objective, optimizer, *, strategy=None, checkpoint_dir,
                 log_dir=None, checkpoint_every_steps=1000, keep_checkpoints=3,
                 log_every_steps=100, steps_per_loop=1, grad_accum_steps=1,
                 progress_fn=print, init_fn=None):
        if checkpoint_dir is None:
            raise ValueError("Trainer needs a checkpoint_dir")
        for name, value in (("checkpoint_every_steps", checkpoint_every_steps),
                            ("keep_checkpoints", keep_checkpoints),
                            ("log_every_steps", log_every_steps),
                            ("steps_per_loop", steps_per_loop),
                            ("grad_accum_steps", grad_accum_steps)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.strategy = strategy or tf.distribute.get_strategy()
        self.objective = objective
        self.metric_names = tuple(getattr(objective, "metric_names", ()))
        clash = [n for n in self.metric_names if n in RESERVED_NAMES]
        if clash:
            raise ValueError(f"objective.metric_names {clash} clash with the names the trainer "
                             f"reports itself: {', '.join(RESERVED_NAMES)}")
        self.checkpoint_dir = checkpoint_dir
        self.log_dir = log_dir
        self.checkpoint_every_steps = int(checkpoint_every_steps)
        self.keep_checkpoints = int(keep_checkpoints)
        self.log_every_steps = int(log_every_steps)
        self.steps_per_loop = int(steps_per_loop)
        self.grad_accum_steps = int(grad_accum_steps)
        self.progress_fn = progress_fn
        self.is_chief = distribute.is_chief(self.strategy)
        self._writers = {}
        self._train_fn = None
        self._eval_fn = None
        self._grad_indices = None

        with self.strategy.scope():
            self.model = model() if callable(model) and not isinstance(model, keras.Model) \
                else model
            if not callable(optimizer) or isinstance(optimizer, keras.optimizers.Optimizer):
                self.optimizer = optimizer
            else:
                self.optimizer = optimizer()
            if not self.model.built or not self.model.trainable_variables:
                raise ValueError("the model must be built (have its variables) before training")
            self._check_in_scope()
            if (distribute.current_precision() == "mixed_float16"
                    and not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)):
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self._loss_scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
            inner = self.optimizer.inner_optimizer if self._loss_scaled else self.optimizer
            # Optimizers from create_optimizer clip after the cross-replica sum; the trainer
            # does the sum itself (once, packed with the statistics), so they must not.
            self._trainer_reduces = hasattr(inner, "reduce_gradients")
            if self._trainer_reduces:
                inner.reduce_gradients = False
            elif self.strategy.num_replicas_in_sync > 1:
                raise ValueError("with more than one replica use an optimizer from "
                                 "bert_tf.training.optimization.create_optimizer")
            self._inner_optimizer = inner
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self._bad_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_step")
            self._bad_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False,
                                         name="bad_loss")
            size = 2 + 2 * len(self.metric_names)
            # train: [loss, examples, metric nums, metric dens, grad_norm, steps]
            self._train_acc = tf.Variable(tf.zeros([size + 2], tf.float64), trainable=False,
                                          name="train_accumulators")
            self._eval_acc = tf.Variable(tf.zeros([size], tf.float64), trainable=False,
                                         name="eval_accumulators")

        # The dropout RNG (Keras SeedGenerator states) is part of the run's state: without it
        # a resumed run draws other dropout masks than an uninterrupted one.
        self._rng_variables = [v for v in self.model.variables
                               if v.name == "seed_generator_state"]
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              step=self.step, rng=list(self._rng_variables))
        self._save_dir = distribute.write_dir(checkpoint_dir, self.strategy)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._save_dir,
            max_to_keep=self.keep_checkpoints if self.is_chief else 1)
        self.restored_from = self._restore_or_init(init_fn)

    # ------------------------------------------------------------------ checkpoints

    def _check_in_scope(self):
        if self.strategy.num_replicas_in_sync == 1 and not isinstance(
                self.strategy, (tf.distribute.MirroredStrategy,
                                tf.distribute.MultiWorkerMirroredStrategy)):
            return
        variable = self.model.trainable_variables[0]
        variable = getattr(variable, "value", variable)
        if not self.strategy.extended.variable_created_in_scope(variable):
            raise ValueError("the model was built outside strategy.scope(); build it (and the "
                             "optimizer) inside the scope, or pass a callable that builds it")

    def _restore_or_init(self, init_fn):
        candidates = checkpoint_state.candidates(self.checkpoint_dir)
        if not candidates:
            state = os.path.join(self.checkpoint_dir, "checkpoint")
            if os.path.exists(state):
                raise CheckpointError(
                    f"{state} exists but names no readable checkpoint and no ckpt-*.index "
                    f"file is there; nothing in {self.checkpoint_dir} was changed: use another "
                    "directory, or move that one aside to start over")
            if init_fn is not None:
                init_fn(self.model)
            return None
        failures = []
        for path in candidates:
            reason = self._try_restore(path)
            if reason is None:
                break
            failures.append((path, reason))
        else:
            path, reason = failures[0]
            raise CheckpointError(
                f"cannot restore any of the {len(failures)} checkpoint(s) in "
                f"{self.checkpoint_dir} into this model (newest {os.path.basename(path)}: "
                f"{reason}); they are corrupt or from a different model; nothing was changed: "
                f"use another directory for this model")
        if failures:
            self._progress(
                f"checkpoint {', '.join(os.path.basename(p) for p, _ in failures)} cannot be "
                f"restored ({failures[0][1]}); resumed from the newest one that can, "
                f"{os.path.basename(path)} (step {int(self.step.numpy())}); it is kept and "
                f"overwritten by the next save")
        else:
            self._progress(f"restored {path} (step {int(self.step.numpy())})")
        return path

    def _try_restore(self, path):
        """None if `path` restored fully into the model, else the reason (one line)."""
        try:
            status = self.checkpoint.restore(path)
            try:
                status.assert_existing_objects_matched()
            except AssertionError:
                if not self._rng_variables or any(
                        name.startswith("rng/") for name, _ in tf.train.list_variables(path)):
                    raise
                # A checkpoint from before the RNG state was saved: everything else must match.
                tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                    step=self.step).restore(path).assert_existing_objects_matched()
                self._progress(f"{path} holds no RNG state (older bert-tf): dropout continues "
                               "from a fresh RNG state, so this resume is not bit-exact")
        except Exception as e:  # noqa: BLE001 (TF raises OpError, IndexError, ValueError...)
            text = str(e).strip()
            first = text.splitlines()[0] if text else type(e).__name__
            return first[:300]
        return None

    def save_checkpoint(self):
        """Saves `ckpt-<step>` (all workers take part; only the chief's copy is kept).
        Raises CheckpointWriteError (one line naming the last good checkpoint) if it cannot
        be written, e.g. on a full disk; the checkpoints already there are not touched."""
        step = int(self.step.numpy())
        try:
            path = self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            checkpoint_state.remove_partial(self._save_dir, step)
            raise CheckpointWriteError(checkpoint_state.write_failure(
                f"checkpoint ckpt-{step} in {self._save_dir}", e, self.checkpoint_dir)) from None
        distribute.remove_worker_dir(self.checkpoint_dir, self.strategy)
        return path

    # ------------------------------------------------------------------ data

    def _distribute(self, dataset, skip=0):
        if isinstance(dataset, tf.data.Dataset):
            batch = dataset.element_spec
            first = tf.nest.flatten(batch)[0]
            if first.shape.rank and first.shape[0] is not None:
                distribute.check_batch_divisible(int(first.shape[0]), self.strategy)
            if skip:
                dataset = dataset.skip(skip)
            return self.strategy.experimental_distribute_dataset(dataset)
        if callable(dataset):
            # Each pipeline yields per-replica batches: a step takes one per local replica.
            fn = dataset if not skip else (lambda ctx: dataset(ctx).skip(
                skip * (ctx.num_replicas_in_sync // ctx.num_input_pipelines)))
            return self.strategy.distribute_datasets_from_function(fn)
        raise TypeError(f"dataset must be a tf.data.Dataset or a function of an InputContext, "
                        f"got {type(dataset).__name__}")

    # ------------------------------------------------------------------ train step

    def _replica_train_step(self, micro_batches):
        model, variables = self.model, self.model.trainable_variables
        k = len(micro_batches)
        grads_acc, share_acc, stats_acc = None, 0.0, None
        deps = []
        for features, labels in micro_batches:
            with tf.control_dependencies(deps):   # one micro-batch's activations at a time
                local_batch = _local_batch_size(features)
                global_batch = _replica_sum(local_batch)
                with tf.GradientTape() as tape:
                    outputs = model(features, training=True)
                    loss, metrics = self.objective.compute_loss(labels, outputs)
                    share = _loss_share(loss, local_batch, global_batch) / k
                    scaled = self.optimizer.scale_loss(share) if self._loss_scaled else share
                grads = tape.gradient(scaled, variables)
                if self._grad_indices is None:
                    # Variables the loss does not reach get no update at all (no decay).
                    self._grad_indices = [i for i, g in enumerate(grads) if g is not None]
                    if not self._grad_indices:
                        raise ValueError("the objective's loss does not depend on any "
                                         "trainable variable")
                grads = [tf.zeros_like(variables[i]) if grads[i] is None
                         else tf.convert_to_tensor(grads[i]) for i in self._grad_indices]
                stats = tf.concat([[local_batch],
                                   _metric_sums(metrics, self.metric_names, local_batch)], 0)
            if grads_acc is None:
                grads_acc, share_acc, stats_acc = grads, share, stats
            else:
                grads_acc = [a + g for a, g in zip(grads_acc, grads)]
                share_acc, stats_acc = share_acc + share, stats_acc + stats
            deps = grads_acc
        packed = [tf.concat([[share_acc], stats_acc], 0)] + grads_acc
        ctx = tf.distribute.get_replica_context()
        if ctx.num_replicas_in_sync > 1 and self._trainer_reduces:
            packed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, packed)
        elif ctx.num_replicas_in_sync > 1:
            packed = [ctx.all_reduce(tf.distribute.ReduceOp.SUM, packed[0])] + packed[1:]
        stats, grads = packed[0], packed[1:]
        loss = stats[0]
        grad_norm = tf.linalg.global_norm(grads)
        if self._loss_scaled:
            grad_norm = grad_norm / self.optimizer.dynamic_scale
            ok = tf.math.is_finite(loss)
        else:
            ok = tf.math.is_finite(loss) & tf.math.is_finite(grad_norm)
        ok = ok & tf.equal(self._bad_step, 0)
        return tf.concat([stats, [grad_norm, tf.cast(ok, tf.float32)]], 0), grads

    def _replica_apply(self, grads):
        variables = self.model.trainable_variables
        self.optimizer.apply(grads, [variables[i] for i in self._grad_indices])

    def _build_train_fn(self):
        k = self.grad_accum_steps

        @tf.function
        def train_loop(iterator, num_steps):
            for _ in tf.range(num_steps):
                if self._bad_step > 0:
                    break
                micro_batches = tuple(next(iterator) for _ in range(k))
                out, grads = self.strategy.run(self._replica_train_step,
                                               args=(micro_batches,))
                out = self.strategy.experimental_local_results(out)[0]
                ok = out[-1] > 0
                if ok:
                    # A separate strategy.run: Keras' apply may merge_call, which cannot
                    # happen under control flow inside a replica function.
                    self.strategy.run(self._replica_apply, args=(grads,))
                    self.step.assign_add(1)
                    # [loss, examples, metric sums..., grad_norm] accumulated; +1 step count
                    self._train_acc.assign_add(tf.cast(
                        tf.concat([out[:-1], [1.0]], 0), tf.float64))
                else:
                    self._bad_step.assign(self.step + 1)
                    self._bad_loss.assign(out[0])

        return train_loop

    # ------------------------------------------------------------------ eval step

    def _replica_eval_step(self, features, labels):
        local_batch = _local_batch_size(features)
        global_batch = _replica_sum(local_batch)
        outputs = self.model(features, training=False)
        loss, metrics = self.objective.compute_loss(labels, outputs)
        share = _loss_share(loss, local_batch, global_batch)
        stats = tf.concat([[share * global_batch, local_batch],
                           _metric_sums(metrics, self.metric_names, local_batch)], 0)
        return _replica_sum(stats)

    def _build_eval_fn(self):
        @tf.function
        def eval_loop(iterator, num_steps):
            i = tf.constant(0, tf.int64)
            while num_steps < 0 or i < num_steps:
                optional = iterator.get_next_as_optional()
                if not optional.has_value():
                    break
                features, labels = optional.get_value()
                out = self.strategy.run(self._replica_eval_step, args=(features, labels))
                out = self.strategy.experimental_local_results(out)[0]
                self._eval_acc.assign_add(tf.cast(out, tf.float64))
                i += 1
            return i

        return eval_loop

    # ------------------------------------------------------------------ public

    @property
    def current_step(self):
        return int(self.step.numpy())

    def learning_rate(self):
        return float(keras.ops.convert_to_numpy(self._inner_optimizer.learning_rate))

    def train(self, dataset, total_steps, eval_dataset=None, eval_every_steps=None,
              eval_steps=None, on_eval=None):
        """Trains until `step == total_steps` (resuming from the restored step).

        Every `eval_every_steps` (if given, with `eval_dataset`), runs `evaluate` and calls
        `on_eval(step, results)`. Returns the last logged training metrics as floats
        ({"loss", <metric names>, "learning_rate", "grad_norm", "examples_per_second"};
        empty if there was nothing to do). Raises NonFiniteLossError on NaN/Inf.
        """
        total_steps = int(total_steps)
        step = self.current_step
        if step >= total_steps:
            self._progress(f"step {step} >= total_steps {total_steps}: nothing to train")
            return {}
        if self._train_fn is None:
            self._train_fn = self._build_train_fn()
        iterator = iter(self._distribute(dataset, skip=step * self.grad_accum_steps))
        self._train_acc.assign(tf.zeros_like(self._train_acc))
        window_start, window_step, last = time.time(), step, {}
        boundaries = [self.log_every_steps, self.checkpoint_every_steps, self.steps_per_loop]
        if eval_dataset is not None and eval_every_steps:
            boundaries.append(int(eval_every_steps))
        while step < total_steps:
            n = min([total_steps - step] + [b - step % b for b in boundaries])
            self._train_fn(iterator, tf.constant(n, tf.int64))
            step += n
            is_log = step % self.log_every_steps == 0 or step == total_steps
            is_ckpt = step % self.checkpoint_every_steps == 0 or step == total_steps
            is_eval = bool(eval_dataset is not None and eval_every_steps
                           and step % int(eval_every_steps) == 0)
            if is_log or is_ckpt or is_eval:
                self._check_finite()
            if is_log:
                now = time.time()
                last = self._log_train(step, total_steps, now - window_start, step - window_step)
                window_start, window_step = now, step
            if is_ckpt:
                self.save_checkpoint()
            if is_eval:
                results = self.evaluate(eval_dataset, eval_steps)
                self._progress(f"eval at step {step}: " + self._fmt_metrics(results))
                if on_eval is not None:
                    on_eval(step, results)
                window_start = time.time()
        self._flush()
        return last

    def evaluate(self, dataset, steps=None):
        """{"loss": ..., <metric names>: ...} as floats over `steps` batches (all if None).

        The loss is the example-weighted mean of the per-batch global losses; metrics are
        sum(numerators) / sum(denominators) over the whole evaluation."""
        if self._eval_fn is None:
            self._eval_fn = self._build_eval_fn()
        self._eval_acc.assign(tf.zeros_like(self._eval_acc))
        iterator = iter(self._distribute(dataset))
        batches = int(self._eval_fn(iterator, tf.constant(-1 if steps is None else steps,
                                                          tf.int64)))
        acc = self._eval_acc.numpy()
        m = len(self.metric_names)
        results = {"loss": float(acc[0] / acc[1]) if acc[1] else float("nan")}
        for i, name in enumerate(self.metric_names):
            den = acc[2 + m + i]
            results[name] = float(acc[2 + i] / den) if den else float("nan")
        self._write_summaries("eval", self.current_step, results)
        self._flush()
        if batches == 0:
            self._progress("evaluate: the dataset was empty")
        return results

    # ------------------------------------------------------------------ reporting

    def _check_finite(self):
        bad = int(self._bad_step.numpy())
        if bad:
            loss = float(self._bad_loss.numpy())
            self._flush()
            latest = tf.train.latest_checkpoint(self.checkpoint_dir)
            kept = (f"the last checkpoint ({latest}) holds the last good state" if latest
                    else "no checkpoint was written yet")
            raise NonFiniteLossError(
                f"non-finite loss or gradient at step {bad} (loss={loss}); training stopped "
                f"before applying it; {kept} (lower the learning rate or check the data)")

    def _log_train(self, step, total_steps, seconds, steps):
        acc = self._train_acc.numpy()
        self._train_acc.assign(tf.zeros_like(self._train_acc))
        m = len(self.metric_names)
        count = acc[-1] or 1.0
        metrics = {"loss": float(acc[0] / count)}
        for i, name in enumerate(self.metric_names):
            den = acc[2 + m + i]
            metrics[name] = float(acc[2 + i] / den) if den else float("nan")
        metrics["learning_rate"] = self.learning_rate()
        metrics["grad_norm"] = float(acc[2 + 2 * m] / count)
        examples = acc[1]
        metrics["examples_per_second"] = float(examples / seconds) if seconds > 0 else 0.0
        eta = seconds / steps * (total_steps - step) if steps else 0.0
        self._progress(
            f"step {step}/{total_steps} ({100.0 * step / total_steps:.1f}%) "
            + self._fmt_metrics({k: v for k, v in metrics.items()
                                 if k not in ("learning_rate", "grad_norm",
                                              "examples_per_second")})
            + f" lr={metrics['learning_rate']:.3g} grad_norm={metrics['grad_norm']:.3g}"
            f" ex/s={metrics['examples_per_second']:.1f} eta={_fmt_duration(eta)}")
        self._write_summaries("train", step, metrics)
        return metrics

    @staticmethod
    def _fmt_metrics(metrics):
        return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())

    def _progress(self, line):
        if self.progress_fn is not None and self.is_chief:
            self.progress_fn(line)

    def _write_summaries(self, split, step, values):
        if self.log_dir is None or not self.is_chief:
            return
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(
                os.path.join(self.log_dir, split))
        with self._writers[split].as_default(step=step):
            for name, value in values.items():
                _write_scalar(name, value)

    def _flush(self):
        for writer in self._writers.values():
            writer.flush()
