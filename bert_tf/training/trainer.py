"""A custom training loop that knows nothing about BERT: distribution, gradient accumulation,
clipping, loss scaling, checkpoints with automatic resume, NaN stop, progress and TensorBoard.

    strategy = distribute.create_strategy("mirrored")
    with strategy.scope():                          # the model's and optimizer's variables
        model = build_model()
        optimizer = optimization.create_optimizer("adamw", 1e-4, total_steps, warmup)
    trainer = Trainer(model, objective, optimizer, strategy=strategy,
                      checkpoint_dir=f"{model_dir}/checkpoints", log_dir=f"{model_dir}/logs")
    trainer.train(train_dataset, total_steps, eval_dataset=eval_ds, eval_every_steps=1000)
    results = trainer.evaluate(eval_ds)             # {"loss": ..., <metric names>: ...}

The objective: see objective.py (what `compute_loss` returns and how it is reduced).
Checkpoints and resume: see checkpointing.py. Progress lines and TensorBoard: reporting.py.

The data: see `distribute.distribute_dataset` (a tf.data.Dataset or a function of an
InputContext; what is skipped on resume).

A non-finite loss (or, without loss scaling, gradient norm) stops training with
`NonFiniteLossError` naming the step and the loss; the bad update is never applied and no
checkpoint is written, so the last checkpoint holds the last good state.
"""

import time

import keras
import tensorflow as tf

from bert_tf.errors import BertTfError
from bert_tf.training import distribute, reporting
from bert_tf.training import objective as objective_lib
from bert_tf.training.checkpointing import RunCheckpoints


class NonFiniteLossError(BertTfError, RuntimeError):
    """Training produced a NaN/Inf loss or gradient; the bad update was not applied."""


def _graph_only(fn):
    """`fn` as the loops' tf.function runs it: traced as written, not rewritten by AutoGraph.
    The replica steps, the model and the optimizer have no Python control flow on tensors;
    converting them (and through them every layer's `call`) cost ~2.5 s of the first training
    step on 2 cores (MiniLM)."""
    return tf.autograph.experimental.do_not_convert(fn)


def _check_settings(**settings):
    if settings["checkpoint_dir"] is None:
        raise ValueError("Trainer needs a checkpoint_dir")
    for name, value in settings.items():
        if name != "checkpoint_dir" and int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


class Trainer:
    """Trains `model` on `objective` with `optimizer` under `strategy` (see the module doc).

    model, optimizer: built (the model has its variables) under `strategy.scope()`; either
      built outside a multi-replica strategy's scope is refused. Optimizers from
      `optimization.create_optimizer` are recommended (global-norm clipping after the
      cross-replica sum); any Keras optimizer works on one replica. With the
      "mixed_float16" policy the optimizer is wrapped in a
      `keras.optimizers.LossScaleOptimizer` unless it already is one.
    checkpoint_dir: where checkpoints live (required; restored from automatically).
    log_dir: TensorBoard root (`train/` and `eval/` inside); None = no summaries.
    steps_per_loop: optimizer steps per tf.function call (fewer Python round trips).
    grad_accum_steps: micro-batches per optimizer step; each dataset element is one
      micro-batch, so the optimizer batch is grad_accum_steps x the dataset batch.
    progress_fn: called with one progress line (str); None = silent.
    init_fn: `init_fn(model)`, called only when `checkpoint_dir` has no checkpoint.
    """

    def __init__(
        self,
        model,
        objective,
        optimizer,
        *,
        strategy=None,
        checkpoint_dir,
        log_dir=None,
        checkpoint_every_steps=1000,
        keep_checkpoints=3,
        log_every_steps=100,
        steps_per_loop=1,
        grad_accum_steps=1,
        progress_fn=print,
        init_fn=None,
    ):
        _check_settings(
            checkpoint_dir=checkpoint_dir,
            checkpoint_every_steps=checkpoint_every_steps,
            keep_checkpoints=keep_checkpoints,
            log_every_steps=log_every_steps,
            steps_per_loop=steps_per_loop,
            grad_accum_steps=grad_accum_steps,
        )
        self.strategy = strategy or tf.distribute.get_strategy()
        self.objective = objective
        self.metric_names = tuple(getattr(objective, "metric_names", ()))
        objective_lib.check_metric_names(self.metric_names)
        self.checkpoint_dir = checkpoint_dir
        self.log_dir = log_dir
        self.checkpoint_every_steps = int(checkpoint_every_steps)
        self.log_every_steps = int(log_every_steps)
        self.steps_per_loop = int(steps_per_loop)
        self.grad_accum_steps = int(grad_accum_steps)
        self.is_chief = distribute.is_chief(self.strategy)
        self.reporter = reporting.Reporter(progress_fn, log_dir, self.is_chief)
        self._train_fn = self._eval_fn = self._grad_indices = None
        with self.strategy.scope():
            self.model = model
            if not self.model.built or not self.model.trainable_variables:
                raise ValueError("the model must be built (have its variables) before training")
            self._check_in_scope(optimizer)
            self._set_optimizer(optimizer)
            self._create_state_variables()
        self._checkpoints = RunCheckpoints(
            self.model,
            self.optimizer,
            self.step,
            checkpoint_dir,
            self.strategy,
            int(keep_checkpoints),
            self.reporter.progress,
        )
        self.checkpoint = self._checkpoints.checkpoint
        self.manager = self._checkpoints.manager
        self._rng_variables = self._checkpoints.rng_variables  # the dropout RNG state
        self.restored_from = self._checkpoints.restore_or_init(init_fn)

    def _set_optimizer(self, optimizer):
        """Wraps for loss scaling under mixed_float16 and takes over the gradient sum."""
        if distribute.current_precision() == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self.optimizer = optimizer
        self._loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        inner = optimizer.inner_optimizer if self._loss_scaled else optimizer
        # Optimizers from create_optimizer clip after the cross-replica sum; the trainer
        # does the sum itself (once, packed with the statistics), so they must not.
        self._trainer_reduces = hasattr(inner, "reduce_gradients")
        if self._trainer_reduces:
            inner.reduce_gradients = False
        elif self.strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "with more than one replica use an optimizer from "
                "bert_tf.training.optimization.create_optimizer"
            )
        self._inner_optimizer = inner
        optimizer.build(self.model.trainable_variables)

    def _create_state_variables(self):
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self._bad_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_step")
        self._bad_loss = tf.Variable(0.0, dtype=tf.float32, trainable=False, name="bad_loss")
        size = 2 + 2 * len(self.metric_names)
        # train: [loss, examples, metric nums, metric dens, grad_norm, steps]
        self._train_acc = tf.Variable(
            tf.zeros([size + 2], tf.float64), trainable=False, name="train_accumulators"
        )
        self._eval_acc = tf.Variable(
            tf.zeros([size], tf.float64), trainable=False, name="eval_accumulators"
        )

    # ------------------------------------------------------------------ checkpoints

    def _check_in_scope(self, optimizer):
        if self.strategy.num_replicas_in_sync == 1 and not isinstance(
            self.strategy,
            (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy),
        ):
            return
        for what, variable in (
            ("model", self.model.trainable_variables[0]),
            ("optimizer", optimizer.iterations),
        ):
            variable = getattr(variable, "value", variable)
            if not self.strategy.extended.variable_created_in_scope(variable):
                raise ValueError(
                    f"the {what} was built outside strategy.scope(); build the "
                    "model and the optimizer inside the scope"
                )

    def save_checkpoint(self):
        """Saves `ckpt-<step>` (see checkpointing.RunCheckpoints.save)."""
        return self._checkpoints.save()

    # ------------------------------------------------------------------ train step

    def _replica_train_step(self, micro_batches):
        model, variables = self.model, self.model.trainable_variables
        k = len(micro_batches)
        grads_acc, share_acc, stats_acc = None, 0.0, None
        deps = []
        for features, labels in micro_batches:
            with tf.control_dependencies(deps):  # one micro-batch's activations at a time
                local_batch = objective_lib.local_batch_size(features)
                global_batch = objective_lib.replica_sum(local_batch)
                with tf.GradientTape() as tape:
                    outputs = model(features, training=True)
                    loss, metrics = self.objective.compute_loss(labels, outputs)
                    share = objective_lib.loss_share(loss, local_batch, global_batch) / k
                    scaled = self.optimizer.scale_loss(share) if self._loss_scaled else share
                grads = tape.gradient(scaled, variables)
                if self._grad_indices is None:
                    # Variables the loss does not reach get no update at all (no decay).
                    self._grad_indices = [i for i, g in enumerate(grads) if g is not None]
                    if not self._grad_indices:
                        raise ValueError(
                            "the objective's loss does not depend on any trainable variable"
                        )
                grads = [
                    tf.zeros_like(variables[i])
                    if grads[i] is None
                    else tf.convert_to_tensor(grads[i])
                    for i in self._grad_indices
                ]
                sums = objective_lib.metric_sums(metrics, self.metric_names, local_batch)
                stats = tf.concat([[local_batch], sums], 0)
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
        replica_step = _graph_only(self._replica_train_step)
        replica_apply = _graph_only(self._replica_apply)

        @tf.function
        def train_loop(iterator, num_steps):
            for _ in tf.range(num_steps):
                if self._bad_step > 0:
                    break
                micro_batches = tuple(next(iterator) for _ in range(k))
                out, grads = self.strategy.run(replica_step, args=(micro_batches,))
                out = self.strategy.experimental_local_results(out)[0]
                ok = out[-1] > 0
                if ok:
                    # A separate strategy.run: Keras' apply may merge_call, which cannot
                    # happen under control flow inside a replica function.
                    self.strategy.run(replica_apply, args=(grads,))
                    self.step.assign_add(1)
                    # [loss, examples, metric sums..., grad_norm] accumulated; +1 step count
                    self._train_acc.assign_add(tf.cast(tf.concat([out[:-1], [1.0]], 0), tf.float64))
                else:
                    self._bad_step.assign(self.step + 1)
                    self._bad_loss.assign(out[0])

        return train_loop

    # ------------------------------------------------------------------ eval step

    def _replica_eval_step(self, features, labels):
        local_batch = objective_lib.local_batch_size(features)
        global_batch = objective_lib.replica_sum(local_batch)
        outputs = self.model(features, training=False)
        loss, metrics = self.objective.compute_loss(labels, outputs)
        share = objective_lib.loss_share(loss, local_batch, global_batch)
        stats = tf.concat(
            [
                [share * global_batch, local_batch],
                objective_lib.metric_sums(metrics, self.metric_names, local_batch),
            ],
            0,
        )
        return objective_lib.replica_sum(stats)

    def _build_eval_fn(self):
        replica_step = _graph_only(self._replica_eval_step)

        @tf.function
        def eval_loop(iterator, num_steps):
            i = tf.constant(0, tf.int64)
            while num_steps < 0 or i < num_steps:
                optional = iterator.get_next_as_optional()
                if not optional.has_value():
                    break
                features, labels = optional.get_value()
                out = self.strategy.run(replica_step, args=(features, labels))
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

    def train(
        self,
        dataset,
        total_steps,
        eval_dataset=None,
        eval_every_steps=None,
        eval_steps=None,
        on_eval=None,
    ):
        """Trains until `step == total_steps` (resuming from the restored step).

        Every `eval_every_steps` (if given, with `eval_dataset`), runs `evaluate` and calls
        `on_eval(step, results)`. Returns the last logged training metrics as floats
        ({"loss", <metric names>, "learning_rate", "grad_norm", "examples_per_second"};
        empty if there was nothing to do). Raises NonFiniteLossError on NaN/Inf.
        """
        total_steps = int(total_steps)
        step = self.current_step
        if step >= total_steps:
            self.reporter.progress(f"step {step} >= total_steps {total_steps}: nothing to train")
            return {}
        if self._train_fn is None:
            self._train_fn = self._build_train_fn()
        iterator = iter(
            distribute.distribute_dataset(dataset, self.strategy, skip=step * self.grad_accum_steps)
        )
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
            is_eval = bool(
                eval_dataset is not None and eval_every_steps and step % int(eval_every_steps) == 0
            )
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
                self.reporter.progress(f"eval at step {step}: " + reporting.fmt_metrics(results))
                if on_eval is not None:
                    on_eval(step, results)
                window_start = time.time()
        self.reporter.flush()
        return last

    def evaluate(self, dataset, steps=None):
        """{"loss": ..., <metric names>: ...} as floats over `steps` batches (all if None).

        The loss is the example-weighted mean of the per-batch global losses; metrics are
        sum(numerators) / sum(denominators) over the whole evaluation."""
        if self._eval_fn is None:
            self._eval_fn = self._build_eval_fn()
        self._eval_acc.assign(tf.zeros_like(self._eval_acc))
        iterator = iter(distribute.distribute_dataset(dataset, self.strategy))
        batches = int(
            self._eval_fn(iterator, tf.constant(-1 if steps is None else steps, tf.int64))
        )
        acc = self._eval_acc.numpy()
        results = {"loss": float(acc[0] / acc[1]) if acc[1] else float("nan")}
        results.update(reporting.ratios(acc, self.metric_names))
        self.reporter.write("eval", self.current_step, results)
        self.reporter.flush()
        if batches == 0:
            self.reporter.progress("evaluate: the dataset was empty")
        return results

    # ------------------------------------------------------------------ reporting

    def _check_finite(self):
        bad = int(self._bad_step.numpy())
        if bad:
            loss = float(self._bad_loss.numpy())
            self.reporter.flush()
            latest = tf.train.latest_checkpoint(self.checkpoint_dir)
            kept = (
                f"the last checkpoint ({latest}) holds the last good state"
                if latest
                else "no checkpoint was written yet"
            )
            raise NonFiniteLossError(
                f"non-finite loss or gradient at step {bad} (loss={loss}); training stopped "
                f"before applying it; {kept} (lower the learning rate or check the data)"
            )

    def _log_train(self, step, total_steps, seconds, steps):
        acc = self._train_acc.numpy()
        self._train_acc.assign(tf.zeros_like(self._train_acc))
        metrics = reporting.train_metrics(acc, self.metric_names, seconds, self.learning_rate())
        eta = seconds / steps * (total_steps - step) if steps else 0.0
        self.reporter.progress(reporting.train_line(step, total_steps, metrics, eta))
        self.reporter.write("train", step, metrics)
        return metrics
