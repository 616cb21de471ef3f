"""What produced a model directory, and whether a rerun is the same run.

config.json "training" holds the run's settings and "input_fingerprints" (bert_tf/fingerprint.py).
Before a run writes anything, `check_same_run` compares them with this run's:
  * no config.json: a new run;
  * the same settings and inputs: the same run (resume, or nothing to do if it finished);
  * anything that decides the result differs: `RunMismatchError`, one line naming the first
    differences, e.g.
      runs/x was made by a different run (train_file content differs (sha256 1a2b... recorded,
      3c4d... now); learning_rate=5e-05 recorded, 0.0001 now); use a new --model_dir, or
      --overwrite_model_dir to start over
Settings that do not change the result (logging and checkpoint intervals, the strategy, file
paths: a moved file with the same content is the same input) are listed by the caller in
`ignore`. A directory written before fingerprints were recorded is checked on its settings only.
"""

from bert_tf import fingerprint as fp
from bert_tf import model_dir as md
from bert_tf.errors import BertTfError

INPUTS_KEY = "input_fingerprints"


class RunMismatchError(BertTfError, ValueError):
    """The model directory was made by a run with other settings or input data."""


def recorded_training(model_dir):
    """config.json "training" of `model_dir`, or None when there is no config.json."""
    return md.ModelDir(model_dir).training_record()


def check_same_run(
    model_dir, settings, inputs, ignore=(), hint="--overwrite_model_dir", normalize=None
):
    """Raises RunMismatchError if `model_dir` records a different run (see the module doc).
    `normalize(settings dict)` is applied to both sides before they are compared. Returns the
    recorded "training" dict (None for a new directory)."""
    recorded = recorded_training(model_dir)
    if recorded is None:
        return None
    normalize = normalize or (lambda values: values)
    diffs = fp.describe_differences(recorded.get(INPUTS_KEY) or {}, inputs)
    diffs += fp.describe_setting_differences(
        normalize(recorded), normalize(settings), ignore=tuple(ignore) + (INPUTS_KEY,)
    )
    if diffs:
        more = f"; and {len(diffs) - 3} more" if len(diffs) > 3 else ""
        fix = f", or {hint} to start over" if hint else ""
        raise RunMismatchError(
            f"{model_dir} was made by a different run ("
            + "; ".join(diffs[:3])
            + more
            + f"); use a new --model_dir{fix}"
        )
    return recorded


# The names every training run writes into its model dir (bert_tf/ownership.py records them;
# the ".tmp" names are the fixed temp names of ModelDir.copy_vocab / save_weights).
RUN_FILES = (
    md.CONFIG_FILE,
    md.VOCAB_FILE,
    md.VOCAB_FILE + ".tmp",
    md.WEIGHTS_FILE,
    ".tmp." + md.WEIGHTS_FILE,
    md.CHECKPOINT_DIR,
    md.LOG_DIR,
    md.EVAL_RESULTS_FILE,
)
