"""Writes a fine-tuned bert-tf model directory as a TF Serving SavedModel, the library behind
`python -m export.saved_model --model_dir=DIR --output_dir=BASE/NAME` (export/saved_model.py):
the next numeric version BASE/NAME/<N>/ (1 if there is none). The version is built in a
temporary directory next to it and renamed into place, so TF Serving never sees a half-written
version and an existing version is never overwritten. Preprocessing (tf.text tokenization,
packing, offset mapping) and postprocessing (labels, entities, answer spans) are in the graph:
raw strings in, answers out. See docs/serving.md for the signatures.
"""

import logging
import os
import re
import shutil

from bert_tf.atomic_io import atomic_write_json
from bert_tf.checkpoints.loader import load_task_model
from bert_tf.model_dir import ModelDir
from bert_tf.tasks import get_task, task_names
from bert_tf.tasks.base import declares
from bert_tf.tasks.registry import UnknownTaskError
from export import publish
from export.serving import budget as serving_budget
from export.serving.budget import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUEST_TOKENS
from export.serving.module import ServingModule
from export.serving.saving import ExportError, save_module
from export.serving.warmup import write_warmup_requests

SETTINGS_FILE = "export_settings.json"

log = logging.getLogger(__name__)


def next_version(base):
    """1 + the largest numeric subdirectory of `base` (1 if none)."""
    versions = (
        [int(n) for n in os.listdir(base) if re.fullmatch(r"\d+", n)] if os.path.isdir(base) else []
    )
    return max(versions, default=0) + 1


def exporting_tasks(export):
    """The registered task types that declare `export` ("serving_signature", "tflite_graph")."""
    return [n for n in task_names(include_pretraining=True) if declares(get_task(n), export)]


def read_model_dir(model_dir, export="serving_signature"):
    """(config dict, vocab file) of a task model dir whose task declares `export` (ExportError
    in one line otherwise)."""
    d = ModelDir(model_dir)
    if not os.path.isdir(model_dir):
        raise ExportError(f"--model_dir={model_dir}: no such directory")
    config = d.read_config()
    kind = config["task"]["type"]
    try:
        declared = declares(get_task(kind), export)
    except UnknownTaskError:
        declared = False
    if not declared:
        what = "serving signature" if export == "serving_signature" else "TFLite graph"
        raise ExportError(
            f"{d.config_path}: task.type {kind!r} has no {what} (expected "
            f"{', '.join(exporting_tasks(export))}; use export.hub for a "
            f"pre-trained encoder)"
        )
    try:
        return config, d.vocab_file()
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None


def request_budget(
    seq_length, max_request_bytes=None, max_request_tokens=None, max_windows_per_request=None
):
    """(max_request_bytes, max_request_tokens), defaults filled in and checked. The deprecated
    max_windows_per_request=N means N x seq_length tokens."""
    if max_windows_per_request is not None:
        if max_request_tokens is not None:
            raise ExportError(
                "max_windows_per_request (deprecated) and max_request_tokens: "
                "give only max_request_tokens (windows x seq_length)"
            )
        if int(max_windows_per_request) < 1:
            raise ExportError(f"max_windows_per_request={max_windows_per_request}: expected >= 1")
        max_request_tokens = serving_budget.tokens_from_windows(max_windows_per_request, seq_length)
        log.warning(
            "--max_windows_per_request is deprecated: using --max_request_tokens=%d "
            "(%s windows x seq_length %d)",
            max_request_tokens,
            max_windows_per_request,
            seq_length,
        )
    budget = (
        DEFAULT_MAX_REQUEST_BYTES if max_request_bytes is None else max_request_bytes,
        DEFAULT_MAX_REQUEST_TOKENS if max_request_tokens is None else max_request_tokens,
    )
    for name, value, least in (
        ("max_request_bytes", budget[0], 1),
        ("max_request_tokens", budget[1], seq_length),
    ):
        if int(value) < least:
            raise ExportError(
                f"{name}={value}: expected >= {least}"
                + (" (seq_length: one row)" if least > 1 else "")
            )
    return int(budget[0]), int(budget[1])


def build_serving_module(
    model_dir,
    seq_length=None,
    pad_to_longest=True,
    model=None,
    max_windows_per_request=None,
    max_request_bytes=None,
    max_request_tokens=None,
):
    """(ServingModule, signatures dict) for a task model directory; the request budget:
    see request_budget and export/serving/budget.py."""
    config, vocab = read_model_dir(model_dir)
    pre = config["preprocessing"]
    seq_length = int(seq_length or pre.get("seq_length", 128))
    max_positions = config["encoder"].get("max_position_embeddings", 512)
    if not 2 < seq_length <= max_positions:
        raise ExportError(
            f"seq_length={seq_length}: expected 3..{max_positions} "
            f"(encoder.max_position_embeddings)"
        )
    max_bytes, max_tokens = request_budget(
        seq_length, max_request_bytes, max_request_tokens, max_windows_per_request
    )
    model = model if model is not None else load_task_model(model_dir)
    module = ServingModule(
        model, config["task"], vocab, pre.get("lower_case", True), seq_length, pad_to_longest
    )
    module.max_request_bytes, module.max_request_tokens = max_bytes, max_tokens
    return module, module.signatures()


def export_serving(
    model_dir,
    output_dir,
    seq_length=None,
    pad_to_longest=True,
    warmup=True,
    model=None,
    max_windows_per_request=None,
    max_request_bytes=None,
    max_request_tokens=None,
):
    """Writes BASE/NAME/<N>/ and returns its path. The request budget: see
    build_serving_module."""
    module, signatures = build_serving_module(
        model_dir,
        seq_length,
        pad_to_longest,
        model,
        max_windows_per_request,
        max_request_bytes,
        max_request_tokens,
    )
    publish.clean_stale_temp_dirs(output_dir)
    tmp = publish.temp_dir(output_dir)
    try:
        save_module(module, tmp, signatures)
        if warmup:
            write_warmup_requests(
                tmp,
                module.task,
                max_rows=module.max_request_tokens // module.seq_length,
                max_bytes=module.max_request_bytes,
            )
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
            raise ExportError(
                publish.disk_full_message(
                    os.path.join(output_dir, str(last + 1)),
                    os.path.join(output_dir, str(last)) if last else None,
                )
            ) from e
        raise


def write_settings(saved_model_dir, module):
    """assets.extra/export_settings.json: the serving limits this version was built with."""
    extra = os.path.join(saved_model_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    settings = {
        "task": module.task["type"],
        "seq_length": module.seq_length,
        "pad_to_longest": module.pad_to_longest,
    }
    settings.update(
        max_request_bytes=module.max_request_bytes, max_request_tokens=module.max_request_tokens
    )
    atomic_write_json(os.path.join(extra, SETTINGS_FILE), settings)
