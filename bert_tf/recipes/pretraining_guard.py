"""Pre-training runs that know their inputs and survive a damaged shard.

Reruns (bert_tf/recipes/run_record.py): config.json "training" records the settings and the
fingerprints of --input_files and --eval_files. A rerun with the same settings and training
data resumes (or, when the run finished and the eval files are the same, says it is complete
and changes nothing); other training data or settings that decide the result are refused in
one line (--overwrite_model_dir starts over). --num_train_steps may grow (continue a finished
run) and the eval files may change (evaluated anew).

Damaged records: a corrupt or truncated record stops tf.data with a DataLossError that names
no file. `train_guarding_records` catches it, finds the file and the record
(bert_tf/data/pretraining/record_scan.py), saves a checkpoint of the steps done so far, and then
  * by default raises `CorruptRecordError`: one line naming the file, the record number and
    the byte offset, and the flag that goes on;
  * with --skip_corrupt_records logs one line (file, records kept, bytes skipped, the count of
    cut files so far), records the cut in DIR/skipped_records.json (so a rerun reads the same
    records) and continues from the current step without the rest of that file.
"""

import os

import tensorflow as tf

from bert_tf import fingerprint, ownership
from bert_tf import model_dir as md
from bert_tf.recipes import run_record
from bert_tf.data.pretraining.record_scan import find_corrupt_record
from bert_tf.errors import BertTfError
from bert_tf.recipes.precision import resolved_settings
from bert_tf.recipes.pretrain_config import PretrainingJobError
from bert_tf.training import checkpoint_state

SKIPPED_FILE = "skipped_records.json"
WRITES = run_record.RUN_FILES + (SKIPPED_FILE,)    # what a run writes into the model dir
# Settings a rerun may change: paths (the data is compared by content), intervals, the
# strategy and hardware, and the length of the run.
NOT_DECIDING = ("model_dir", "input_files", "eval_files", "vocab_file", "encoder_config",
                "config_overrides", "mode", "strategy", "tpu", "num_gpus", "xla",
                "init_checkpoint", "checkpoint_every_steps", "keep_checkpoints",
                "log_every_steps", "eval_every_steps", "eval_steps", "num_train_steps",
                "skip_corrupt_records", "overwrite_model_dir")


class CorruptRecordError(BertTfError, IOError):
    """A pre-training record file holds a corrupt or truncated record."""


def input_fingerprints(s, expand):
    out = {"input_files": fingerprint.files_fingerprint(expand(s.input_files))}
    if s.eval_files:
        out["eval_files"] = fingerprint.files_fingerprint(expand(s.eval_files))
    return out


def training_record(s, fingerprints):
    record = s.record()
    record[run_record.INPUTS_KEY] = fingerprints
    return record


def check_rerun(s, fingerprints, latest_step, progress):
    """Raises RunMismatchError for another run in s.model_dir; returns the recorded eval
    results (or {} for mode=train) when this identical run already finished, else None."""
    d = md.ModelDir(s.model_dir)
    if s.overwrite_model_dir:
        return None
    settings = s.record()
    recorded = run_record.check_same_run(
        s.model_dir, settings, {"input_files": fingerprints["input_files"]},
        ignore=NOT_DECIDING, normalize=resolved_settings)
    if recorded is None or latest_step < s.num_train_steps or not os.path.isfile(
            d.weights_path):
        return None
    if s.mode == "train":
        progress(f"[pretrain] {s.model_dir} is already complete (step {latest_step}, same "
                 "settings and data); nothing to do")
        return {}
    if not os.path.isfile(d.eval_results_path):
        return None
    results = d.read_json(md.EVAL_RESULTS_FILE)
    same_eval = ((recorded.get(run_record.INPUTS_KEY) or {}).get("eval_files", {}).get(
        "sha256") == fingerprints.get("eval_files", {}).get("sha256"))
    if results.get("step") != latest_step or not same_eval:
        return None
    progress(f"[pretrain] {s.model_dir} is already complete (step {latest_step}, same settings "
             f"and data; masked_lm_accuracy={results.get('masked_lm_accuracy')}); nothing to "
             "do (--overwrite_model_dir to train again)")
    return results


def _expanded(patterns, expand):
    try:
        return expand(patterns) if patterns else []
    except Exception:     # noqa: BLE001 (check_records names a pattern that matches nothing)
        return []


def _resuming_with(s, path, its_own):
    """The model dir's own vocab.txt / config.json named to resume: the run keeps it (never
    with --overwrite_model_dir, which removes it)."""
    return (not s.overwrite_model_dir and os.path.exists(its_own)
            and os.path.samefile(path, its_own))


def ownership_plan(s, expand):
    """The checked RunPlan of the model dir (bert_tf/ownership.py): refuses, changing
    nothing, a model dir that is, contains or lies inside --init_checkpoint, an input (records,
    vocab, a --config file) among the paths the run writes or removes, a symlinked logs/ or
    checkpoints/, a file bert-tf did not write that the run would replace, and
    --overwrite_model_dir on a directory holding anything bert-tf did not write."""
    inputs = [("--input_files", f) for f in _expanded(s.input_files, expand)]
    inputs += [("--eval_files", f) for f in _expanded(s.eval_files, expand)]
    own = md.ModelDir(s.model_dir)
    for flag, path, its_own in (("--vocab_file", s.vocab_file, own.vocab_path),
                                ("--config", s.encoder_config, own.config_path)):
        if isinstance(path, str) and os.path.isfile(path) and not _resuming_with(
                s, path, its_own):
            inputs.append((flag, path))
    eval_only = s.mode == "eval"
    try:
        return ownership.plan_model_dir(
            s.model_dir, "pretrain",
            (md.EVAL_RESULTS_FILE, md.LOG_DIR) if eval_only else WRITES,
            overwrite=s.overwrite_model_dir and not eval_only, inputs=inputs,
            sources=[] if eval_only else [("--init_checkpoint", s.init_checkpoint)])
    except ownership.OwnershipError as e:
        raise PretrainingJobError(str(e)) from None


def read_skipped(model_dir):
    """{file path: good records} recorded by earlier --skip_corrupt_records cuts."""
    path = md.ModelDir(model_dir).file(SKIPPED_FILE)
    if not os.path.isfile(path):
        return {}
    return {k: v["good_records"]
            for k, v in md.ModelDir(model_dir).read_json(SKIPPED_FILE).items()}


def _record_skip(model_dir, found, write):
    path = md.ModelDir(model_dir).file(SKIPPED_FILE)
    values = md.ModelDir(model_dir).read_json(SKIPPED_FILE) if os.path.isfile(path) else {}
    values[found.path] = {"good_records": found.good_records, "offset": found.offset,
                          "reason": found.reason}
    if write:
        md.ModelDir(model_dir).write_json(SKIPPED_FILE, values)
    return len(values)


def _raise_for_eval_files(s, expand, error):
    """CorruptRecordError naming the damaged --eval_files record (evaluation never skips)."""
    found = find_corrupt_record(expand(s.eval_files)) if s.eval_files else None
    if found is not None:
        raise CorruptRecordError(f"--eval_files: {found.describe()}; replace or remove that "
                                 "file") from None
    raise CorruptRecordError(f"a record could not be read ({error.message.strip()[:200]}), "
                             "but no input or eval file fails when read again alone") from None


def evaluate_guarding_records(trainer, dataset, s, expand, steps=None):
    """trainer.evaluate with a damaged eval record named in one line."""
    try:
        return trainer.evaluate(dataset, steps)
    except tf.errors.DataLossError as e:
        _raise_for_eval_files(s, expand, e)


def train_guarding_records(trainer, make_dataset, expand, s, progress, write=True,
                           **train_args):
    """trainer.train(make_dataset(limits), ...) with the damaged-record policy of the module
    doc. `make_dataset(record_limits)` builds the training input; `expand(patterns)` lists
    the files of --input_files / --eval_files."""
    files = expand(s.input_files)
    limits = read_skipped(s.model_dir)
    while True:
        try:
            return trainer.train(make_dataset(limits), s.num_train_steps, **train_args)
        except tf.errors.DataLossError as e:
            found = find_corrupt_record(files, skip=limits)
            if found is None:    # an evaluation during training read the damaged record
                _raise_for_eval_files(s, expand, e)
            saved = None
            if write and trainer.current_step > max(0, checkpoint_state.step_of(
                    checkpoint_state.last_good(trainer.checkpoint_dir))):
                saved = trainer.save_checkpoint()      # keep the good steps done so far
            where = f"; the steps done so far are saved in {saved}" if saved else ""
            if not s.skip_corrupt_records:
                raise CorruptRecordError(
                    f"--input_files: {found.describe()}{where}; rerun with "
                    "--skip_corrupt_records to train on without the rest of that file") from None
            count = _record_skip(s.model_dir, found, write)
            limits[found.path] = found.good_records
            skipped = found.skipped_bytes
            progress(f"[pretrain] --skip_corrupt_records: {found.describe()}; keeping its "
                     f"first {found.good_records} records, skipping the rest"
                     + (f" ({skipped} bytes)" if skipped is not None else "")
                     + f"; {count} file(s) cut so far (listed in {SKIPPED_FILE}); continuing "
                     f"at step {trainer.current_step}")
