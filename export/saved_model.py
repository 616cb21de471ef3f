"""Exports a fine-tuned bert-tf model directory as a TF Serving SavedModel.

    python -m export.saved_model --model_dir=DIR --output_dir=BASE/NAME

writes the next numeric version BASE/NAME/<N>/ (1 if there is none). The version is built in a
temporary directory next to it and renamed into place, so TF Serving never sees a half-written
version and an existing version is never overwritten. Preprocessing (tf.text tokenization,
packing, offset mapping) and postprocessing (labels, entities, answer spans) are in the graph:
raw strings in, answers out. See docs/serving.md for the signatures.
"""

import os
import re
import shutil
import sys

from absl import app, flags

from bert_tf.atomic_io import atomic_write_json
from bert_tf.checkpoints.loader import load_task_model
from bert_tf.model_dir import ModelDir
from export import publish
# ExportError, hold_keras_layer and tf_variables are re-exported (export.saving holds them)
from export.saving import ExportError, hold_keras_layer, save_module, tf_variables  # noqa: F401
from export.serving_graph import DEFAULT_MAX_WINDOWS, SIGNATURES, ServingModule
from export.warmup import write_warmup_requests

SETTINGS_FILE = "export_settings.json"

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string("model_dir", None, "bert-tf model directory (config.json, vocab.txt, "
                        "weights) of a classify / tag / squad / multiple_choice model.")
    flags.DEFINE_string("output_dir", None, "BASE/NAME: the model's directory for TF Serving; "
                        "the export goes to the next numeric version BASE/NAME/<N>/.")
    flags.DEFINE_integer("seq_length", None, "Maximum packed sequence length (default: the "
                         "model dir's preprocessing.seq_length).")
    flags.DEFINE_bool("pad_to_longest", True, "Pad each batch to its own longest sequence "
                      "(capped at seq_length); false pads every request to seq_length.")
    flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.")
    flags.DEFINE_integer("max_windows_per_request", DEFAULT_MAX_WINDOWS, "squad, tag and "
                         "classify models: the most windows (model batch rows) one request may "
                         "cause (a text longer than seq_length is read in several; a text "
                         "pair is one); a request needing more is refused with "
                         "INVALID_ARGUMENT. Recorded in assets.extra/export_settings.json.")


def next_version(base):
    """1 + the largest numeric subdirectory of `base` (1 if none)."""
    versions = [int(n) for n in os.listdir(base) if re.fullmatch(r"\d+", n)] \
        if os.path.isdir(base) else []
    return max(versions, default=0) + 1


def read_model_dir(model_dir):
    d = ModelDir(model_dir)
    if not os.path.isdir(model_dir):
        raise ExportError(f"--model_dir={model_dir}: no such directory")
    config = d.read_config()
    task = config["task"]
    if task["type"] not in SIGNATURES:
        raise ExportError(f"{d.config_path}: task.type {task['type']!r} has no serving "
                          f"signature (expected {', '.join(SIGNATURES)}; use export.hub "
                          f"for a pre-trained encoder)")
    try:
        return config, d.vocab_file()
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None


def build_serving_module(model_dir, seq_length=None, pad_to_longest=True, model=None,
                         max_windows_per_request=None):
    """(ServingModule, signatures dict) for a task model directory."""
    config, vocab = read_model_dir(model_dir)
    pre = config["preprocessing"]
    seq_length = int(seq_length or pre.get("seq_length", 128))
    max_positions = config["encoder"].get("max_position_embeddings", 512)
    if not 2 < seq_length <= max_positions:
        raise ExportError(f"seq_length={seq_length}: expected 3..{max_positions} "
                          f"(encoder.max_position_embeddings)")
    if max_windows_per_request is None:
        max_windows_per_request = DEFAULT_MAX_WINDOWS
    if int(max_windows_per_request) < 1:
        raise ExportError(f"max_windows_per_request={max_windows_per_request}: expected >= 1")
    model = model if model is not None else load_task_model(model_dir)
    module = ServingModule(model, config["task"], vocab, pre.get("lower_case", True),
                           seq_length, pad_to_longest)
    module.max_windows = int(max_windows_per_request)
    return module, module.signatures()




def export_serving(model_dir, output_dir, seq_length=None, pad_to_longest=True, warmup=True,
                   model=None, max_windows_per_request=None):
    """Writes BASE/NAME/<N>/ and returns its path. `max_windows_per_request` (SQuAD): see
    export.serving_graph.DEFAULT_MAX_WINDOWS."""
    module, signatures = build_serving_module(model_dir, seq_length, pad_to_longest, model,
                                              max_windows_per_request)
    publish.clean_stale_temp_dirs(output_dir)
    tmp = publish.temp_dir(output_dir)
    try:
        save_module(module, tmp, signatures)
        if warmup:
            write_warmup_requests(tmp, module.task, max_rows=module.max_windows)
        write_settings(tmp, module)
        publish.finish(tmp)
        while True:
            final = os.path.join(output_dir, str(next_version(output_dir)))
            try:
                os.rename(tmp, final)  # fails if `final` appeared meanwhile: never clobbers
                return final
            except OSError:
                if not os.path.exists(final):
                    raise
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if publish.is_disk_full(e):
            last = next_version(output_dir) - 1
            raise ExportError(publish.disk_full_message(
                os.path.join(output_dir, str(last + 1)),
                os.path.join(output_dir, str(last)) if last else None)) from e
        raise


def write_settings(saved_model_dir, module):
    """assets.extra/export_settings.json: the serving limits this version was built with."""
    extra = os.path.join(saved_model_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    settings = {"task": module.task["type"], "seq_length": module.seq_length,
                "pad_to_longest": module.pad_to_longest}
    if module.task["type"] in ("squad", "tag", "classify"):
        settings["max_windows_per_request"] = module.max_windows
    atomic_write_json(os.path.join(extra, SETTINGS_FILE), settings)


def main(argv):
    del argv
    for name in ("model_dir", "output_dir"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    try:
        path = export_serving(FLAGS.model_dir, FLAGS.output_dir, FLAGS.seq_length,
                              FLAGS.pad_to_longest, FLAGS.warmup,
                              max_windows_per_request=FLAGS.max_windows_per_request)
    except (ExportError, ValueError, OSError) as e:
        sys.exit(f"export.saved_model: {str(e).splitlines()[0]}")
    print(path)


if __name__ == "__main__":
    define_flags()
    app.run(main)
