"""A tiny deterministic training run, executed in a subprocess by the trainer tests.

    python -m tests.training.train_worker --out=RESULT.npz --checkpoint_dir=DIR [--mode=...]

Modes: "single" (default strategy), "mirrored" (MirroredStrategy on 2 logical CPU devices),
"multi_worker" (MultiWorkerMirroredStrategy, cluster from TF_CONFIG). Writes the final
weights (w0, w1, ...), the evaluation results and the progress lines to --out (chief only).
Exit code 3 = NonFiniteLossError (its message is printed), 4 = CheckpointRestoreError.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="single", choices=["single", "mirrored", "multi_worker"])
    p.add_argument("--out", default=None)
    p.add_argument("--checkpoint_dir", required=True)
    p.add_argument("--log_dir", default=None)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=8, help="global micro-batch size")
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--checkpoint_every", type=int, default=4)
    p.add_argument("--log_every", type=int, default=1)
    p.add_argument("--steps_per_loop", type=int, default=1)
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per log line")
    p.add_argument("--nan_at", type=int, default=0, help="make the loss NaN from this step")
    p.add_argument("--optimizer", default="adamw")
    p.add_argument("--clip_norm", type=float, default=1.0)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument(
        "--odd_batch_check",
        action="store_true",
        help="first try a global batch of 5 and print the error",
    )
    return p.parse_args()


class Objective:
    """loss = Ratio(sum(w * CE), sum(w)) + 0.5 * mean CE; uneven weights across replicas."""

    metric_names = ("accuracy", "weighted_ce")

    def __init__(self, nan_at=0, step=None):
        self.nan_at, self.step = nan_at, step

    def compute_loss(self, labels, outputs):
        import tensorflow as tf

        from bert_tf.training.objective import Ratio

        y, w = labels["y"], labels["w"]
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=outputs)  # [B]
        if self.nan_at:
            poison = tf.where(self.step + 1 >= self.nan_at, float("nan"), 0.0)
            ce = ce + tf.cast(poison, ce.dtype)
        correct = tf.cast(tf.equal(tf.argmax(outputs, -1, output_type=tf.int32), y), tf.float32)
        loss = [Ratio(w * ce, w), 0.5 * ce]
        return loss, {
            "accuracy": (tf.reduce_sum(correct), tf.size(correct)),
            "weighted_ce": Ratio(tf.reduce_sum(w * ce), tf.reduce_sum(w)),
        }


def make_data(n=96, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32") + (x[:, 2] > 1).astype("int32")
    w = (rng.uniform(size=n) < 0.6).astype("float32")
    return x, y, w


def main():
    args = parse()
    import tensorflow as tf

    if args.mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import keras

    from bert_tf.training import distribute, optimization
    from bert_tf.training.checkpointing import CheckpointRestoreError
    from bert_tf.training.trainer import NonFiniteLossError, Trainer

    if args.mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif args.mode == "multi_worker":
        strategy = distribute.create_strategy("multi_worker")
    else:
        strategy = distribute.create_strategy("default")

    keras.utils.set_random_seed(7)
    x, y, w = make_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, {"y": y, "w": w}))
    dataset = dataset.repeat().batch(args.batch, drop_remainder=True)
    eval_dataset = tf.data.Dataset.from_tensor_slices((x, {"y": y, "w": w})).batch(
        args.batch, drop_remainder=True
    )
    if args.mode == "multi_worker":
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        dataset = dataset.with_options(options)
        eval_dataset = eval_dataset.with_options(options)

    def build_model():
        keras.utils.set_random_seed(7)
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(args.hidden, activation="tanh", name="dense"),
                keras.layers.LayerNormalization(name="layer_norm"),
                keras.layers.Dense(3, name="head"),
            ]
        )
        return model

    def build_optimizer():
        return optimization.create_optimizer(
            args.optimizer, 0.05, args.steps, 2, weight_decay=0.01, clip_norm=args.clip_norm
        )

    lines = []

    def progress(line):
        lines.append(line)
        print(line, flush=True)
        if args.sleep:
            time.sleep(args.sleep)

    objective = Objective(args.nan_at)
    try:
        with strategy.scope():
            model, optimizer = build_model(), build_optimizer()
        trainer = Trainer(
            model,
            objective,
            optimizer,
            strategy=strategy,
            checkpoint_dir=args.checkpoint_dir,
            log_dir=args.log_dir,
            checkpoint_every_steps=args.checkpoint_every,
            log_every_steps=args.log_every,
            steps_per_loop=args.steps_per_loop,
            grad_accum_steps=args.accum,
            progress_fn=progress,
        )
    except CheckpointRestoreError as e:
        print(f"CheckpointRestoreError: {e}", flush=True)
        return 4
    objective.step = trainer.step
    if args.odd_batch_check:
        try:
            trainer.train(
                tf.data.Dataset.from_tensor_slices((x, {"y": y, "w": w})).batch(
                    5, drop_remainder=True
                ),
                args.steps,
            )
            print("ODD_BATCH_ERROR: none", flush=True)
        except ValueError as e:
            print(f"ODD_BATCH_ERROR: {e}", flush=True)
    try:
        train_results = trainer.train(dataset, args.steps)
    except NonFiniteLossError as e:
        print(f"NonFiniteLossError: {e}", flush=True)
        return 3
    eval_results = trainer.evaluate(eval_dataset)
    # 89 examples in batches of 8: the last batch has 1 example, so with 2 replicas one
    # replica gets an empty batch.
    partial = tf.data.Dataset.from_tensor_slices((x[:89], {"y": y[:89], "w": w[:89]}))
    if args.mode == "multi_worker":
        partial = partial.with_options(options)
    eval_results["partial"] = trainer.evaluate(partial.batch(8))
    print("EVAL " + json.dumps(eval_results), flush=True)
    if args.out and trainer.is_chief:
        import numpy as np

        weights = {f"w{i}": v.numpy() for i, v in enumerate(trainer.model.weights)}
        np.savez(
            args.out,
            step=trainer.current_step,
            lines=np.array(lines),
            eval=json.dumps(eval_results),
            train=json.dumps(train_results),
            **weights,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
