"""The checkpoints of a training run: restore (or initialise) at start, save during the run.

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
different model), `CheckpointRestoreError` is raised and nothing in the directory is
touched. A save that fails (e.g. a full disk) raises `CheckpointWriteError` naming the last
good checkpoint.

A non-finite loss (or, without loss scaling, gradient norm) stops training with
`NonFiniteLossError` naming the step and the loss; the bad update is never applied and no
checkpoint is written, so the last checkpoint holds the last good state.
"""

import os

import tensorflow as tf

from bert_tf.errors import BertTfError
from bert_tf.training import checkpoint_state, distribute


class CheckpointRestoreError(BertTfError, RuntimeError):
    """A checkpoint in the checkpoint directory cannot be restored into this model."""


class CheckpointWriteError(BertTfError, OSError):
    """A checkpoint could not be written (e.g. the disk is full); older ones are intact."""


class RunCheckpoints:
    """`tf.train.Checkpoint(model=, optimizer=, step=, rng=)` files `ckpt-<step>` in
    `directory` (this worker's copy in `distribute.write_dir`), the newest `keep` kept."""

    def __init__(self, model, optimizer, step, directory, strategy, keep, progress):
        self.model, self.optimizer, self.step = model, optimizer, step
        self.directory, self.strategy, self._progress = directory, strategy, progress
        # The dropout RNG (Keras SeedGenerator states) is part of the run's state: without it
        # a resumed run draws other dropout masks than an uninterrupted one.
        self.rng_variables = [v for v in model.variables if v.name == "seed_generator_state"]
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, step=step, rng=list(self.rng_variables)
        )
        self.save_dir = distribute.write_dir(directory, strategy)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.save_dir, max_to_keep=keep if distribute.is_chief(strategy) else 1
        )

    def restore_or_init(self, init_fn):
        candidates = checkpoint_state.candidates(self.directory)
        if not candidates:
            state = os.path.join(self.directory, "checkpoint")
            if os.path.exists(state):
                raise CheckpointRestoreError(
                    f"{state} exists but names no readable checkpoint and no ckpt-*.index "
                    f"file is there; nothing in {self.directory} was changed: use another "
                    "directory, or move that one aside to start over"
                )
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
            raise CheckpointRestoreError(
                f"cannot restore any of the {len(failures)} checkpoint(s) in "
                f"{self.directory} into this model (newest {os.path.basename(path)}: "
                f"{reason}); they are corrupt or from a different model; nothing was changed: "
                f"use another directory for this model"
            )
        if failures:
            self._progress(
                f"checkpoint {', '.join(os.path.basename(p) for p, _ in failures)} cannot be "
                f"restored ({failures[0][1]}); resumed from the newest one that can, "
                f"{os.path.basename(path)} (step {int(self.step.numpy())}); it is kept and "
                f"overwritten by the next save"
            )
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
                if not self.rng_variables or any(
                    name.startswith("rng/") for name, _ in tf.train.list_variables(path)
                ):
                    raise
                # A checkpoint from before the RNG state was saved: everything else must match.
                tf.train.Checkpoint(
                    model=self.model, optimizer=self.optimizer, step=self.step
                ).restore(path).assert_existing_objects_matched()
                self._progress(
                    f"{path} holds no RNG state (older bert-tf): dropout continues "
                    "from a fresh RNG state, so this resume is not bit-exact"
                )
        except Exception as e:  # noqa: BLE001 (TF raises OpError, IndexError, ValueError...)
            text = str(e).strip()
            first = text.splitlines()[0] if text else type(e).__name__
            return first[:300]
        return None

    def save(self):
        """Saves `ckpt-<step>` (all workers take part; only the chief's copy is kept).
        Raises CheckpointWriteError (one line naming the last good checkpoint) if it cannot
        be written, e.g. on a full disk; the checkpoints already there are not touched."""
        step = int(self.step.numpy())
        try:
            path = self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            checkpoint_state.remove_partial(self.save_dir, step)
            raise CheckpointWriteError(
                checkpoint_state.write_failure(
                    f"checkpoint ckpt-{step} in {self.save_dir}", e, self.directory
                )
            ) from None
        distribute.remove_worker_dir(self.directory, self.strategy)
        return path
