"""Pre-training that survives a damaged record file.

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

from bert_tf import model_dir as md
from bert_tf.data.pretraining.dataset import expand_file_patterns
from bert_tf.data.pretraining.record_scan import find_corrupt_record
from bert_tf.errors import BertTfError
from bert_tf.training import checkpoint_state

SKIPPED_FILE = "skipped_records.json"


class CorruptRecordError(BertTfError, IOError):
    """A pre-training record file holds a corrupt or truncated record."""


def read_skipped(model_dir):
    """{file path: good records} recorded by earlier --skip_corrupt_records cuts."""
    path = md.ModelDir(model_dir).file(SKIPPED_FILE)
    if not os.path.isfile(path):
        return {}
    return {k: v["good_records"] for k, v in md.ModelDir(model_dir).read_json(SKIPPED_FILE).items()}


def _record_skip(model_dir, found, write):
    path = md.ModelDir(model_dir).file(SKIPPED_FILE)
    values = md.ModelDir(model_dir).read_json(SKIPPED_FILE) if os.path.isfile(path) else {}
    values[found.path] = {
        "good_records": found.good_records,
        "offset": found.offset,
        "reason": found.reason,
    }
    if write:
        md.ModelDir(model_dir).write_json(SKIPPED_FILE, values)
    return len(values)


def _raise_for_eval_files(config, error):
    """CorruptRecordError naming the damaged --eval_files record (evaluation never skips)."""
    found = (
        find_corrupt_record(expand_file_patterns(config.eval_files)) if config.eval_files else None
    )
    if found is not None:
        raise CorruptRecordError(
            f"--eval_files: {found.describe()}; replace or remove that file"
        ) from None
    raise CorruptRecordError(
        f"a record could not be read ({error.message.strip()[:200]}), "
        "but no input or eval file fails when read again alone"
    ) from None


def evaluate_guarding_records(trainer, dataset, config, steps=None):
    """trainer.evaluate with a damaged eval record named in one line."""
    try:
        return trainer.evaluate(dataset, steps)
    except tf.errors.DataLossError as e:
        _raise_for_eval_files(config, e)


def train_guarding_records(trainer, make_dataset, config, progress, write=True, **train_args):
    """trainer.train(make_dataset(limits), ...) with the damaged-record policy of the module
    doc. `make_dataset(record_limits)` builds the training input; `write`: this worker writes
    the model dir (the chief)."""
    files = expand_file_patterns(config.input_files)
    limits = read_skipped(config.model_dir)
    while True:
        try:
            return trainer.train(make_dataset(limits), config.num_train_steps, **train_args)
        except tf.errors.DataLossError as e:
            found = find_corrupt_record(files, skip=limits)
            if found is None:  # an evaluation during training read the damaged record
                _raise_for_eval_files(config, e)
            saved = None
            if write and trainer.current_step > max(
                0, checkpoint_state.step_of(checkpoint_state.last_good(trainer.checkpoint_dir))
            ):
                saved = trainer.save_checkpoint()  # keep the good steps done so far
            where = f"; the steps done so far are saved in {saved}" if saved else ""
            if not config.skip_corrupt_records:
                raise CorruptRecordError(
                    f"--input_files: {found.describe()}{where}; rerun with "
                    "--skip_corrupt_records to train on without the rest of that file"
                ) from None
            count = _record_skip(config.model_dir, found, write)
            limits[found.path] = found.good_records
            skipped = found.skipped_bytes
            progress(
                f"--skip_corrupt_records: {found.describe()}; keeping its "
                f"first {found.good_records} records, skipping the rest"
                + (f" ({skipped} bytes)" if skipped is not None else "")
                + f"; {count} file(s) cut so far (listed in {SKIPPED_FILE}); continuing "
                f"at step {trainer.current_step}"
            )
