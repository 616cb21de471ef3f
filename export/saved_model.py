"""Exports a fine-tuned bert-tf model directory as a TF Serving SavedModel.

    python -m export.saved_model --model_dir=DIR --output_dir=BASE/NAME

writes the next numeric version BASE/NAME/<N>/ (1 if there is none), built from the task's
declaration (bert_tf/tasks/<task>/serving.py) by export/serving/ (writer.py: versions and
publishing; module.py: the signatures; budget.py, warmup.py, saving.py). See docs/serving.md.
"""

import sys

from absl import app, flags

# the library names callers import from here (export/serving/ holds them)
from export.serving.budget import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_TOKENS
from export.serving.saving import ExportError, hold_keras_layer, save_module, tf_variables
from export.serving.writer import (
    SETTINGS_FILE,
    build_serving_module,
    export_serving,
    next_version,
    read_model_dir,
    request_budget,
    write_settings,
)

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_REQUEST_TOKENS",
    "ExportError",
    "SETTINGS_FILE",
    "build_serving_module",
    "define_flags",
    "export_serving",
    "hold_keras_layer",
    "main",
    "next_version",
    "read_model_dir",
    "request_budget",
    "save_module",
    "tf_variables",
    "write_settings",
]

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string(
        "model_dir",
        None,
        "bert-tf model directory (config.json, vocab.txt, "
        "weights) of a classify / tag / squad / multiple_choice model.",
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "BASE/NAME: the model's directory for TF Serving; "
        "the export goes to the next numeric version BASE/NAME/<N>/.",
    )
    flags.DEFINE_integer(
        "seq_length",
        None,
        "Maximum packed sequence length (default: the model dir's preprocessing.seq_length).",
    )
    flags.DEFINE_bool(
        "pad_to_longest",
        True,
        "Pad each batch to its own longest sequence "
        "(capped at seq_length); false pads every request to seq_length.",
    )
    flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.")
    flags.DEFINE_integer(
        "max_request_bytes",
        DEFAULT_MAX_REQUEST_BYTES,
        "Every task: the "
        "most UTF-8 bytes of text (all input strings together) one request "
        "may hold; checked in the graph before tokenization, a request over "
        "it is refused with INVALID_ARGUMENT without reading its text. The "
        "default, 256 KiB, holds a 10,000-word text in any language. "
        "Recorded in assets.extra/export_settings.json.",
    )
    flags.DEFINE_integer(
        "max_request_tokens",
        DEFAULT_MAX_REQUEST_TOKENS,
        "Every task: the "
        "most model batch rows x seq_length one request may cause (a row is "
        "a window of a long text, a text pair, or one choice of a multiple-"
        "choice example); checked in the graph before the encoder runs, a "
        "request over it is refused with INVALID_ARGUMENT. The default "
        "answers a 10,000-word English text in one request at any "
        "seq_length. Recorded in assets.extra/export_settings.json.",
    )
    flags.DEFINE_integer(
        "max_windows_per_request",
        None,
        "Deprecated: the window cap of "
        "earlier versions, which ignored seq_length. Still accepted: N means "
        "--max_request_tokens=N x seq_length (a warning says so); not "
        "together with --max_request_tokens.",
    )


def main(argv):
    del argv
    for name in ("model_dir", "output_dir"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    # the deprecated window flag stands for the token flag unless that one is given too
    tokens = None if FLAGS["max_request_tokens"].using_default_value else FLAGS.max_request_tokens
    try:
        path = export_serving(
            FLAGS.model_dir,
            FLAGS.output_dir,
            FLAGS.seq_length,
            FLAGS.pad_to_longest,
            FLAGS.warmup,
            max_windows_per_request=FLAGS.max_windows_per_request,
            max_request_bytes=FLAGS.max_request_bytes,
            max_request_tokens=tokens,
        )
    except (ExportError, ValueError, OSError) as e:
        sys.exit(f"export.saved_model: {str(e).splitlines()[0]}")
    print(path)


if __name__ == "__main__":
    define_flags()
    app.run(main)
