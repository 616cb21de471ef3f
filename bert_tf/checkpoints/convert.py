"""Checkpoint conversion between the three directory kinds (used by `apps.convert`).

    to="bert_tf"  any checkpoint -> a bert-tf model directory (HF/Google sources become a
                  pre-training model dir: encoder + MLM/NSP heads where the source has them)
    to="hf"       any checkpoint -> a Hugging Face BERT directory
    to="google"   any checkpoint -> an original google-research/bert directory

The output is written into a temp directory next to `output` and renamed into place, so a
failed conversion leaves nothing behind; an existing non-empty `output` is only replaced
with `overwrite=True`.
"""

import logging
import os
import shutil
import tempfile

from bert_tf import model_dir as md
from bert_tf import ownership
from bert_tf.checkpoints import loader, writers
from bert_tf.checkpoints import names as tensor_names
from bert_tf.checkpoints.sources import CheckpointError, detect_kind, read_source
from bert_tf.file_modes import apply_default_modes
from bert_tf.model_dir.task_model import write_model_dir
from bert_tf.models import BertPretrainer

log = logging.getLogger(__name__)

TARGETS = ("bert_tf", "hf", "google")


def _load(path):
    """-> (model, vocab_file, lower_case). The model is a pretrainer when the source has
    pre-training heads (or is a pre-training model dir), else a task model or an encoder."""
    kind = detect_kind(path)
    if kind == "bert_tf":
        d = md.ModelDir(path)
        pre = d.read_config()["preprocessing"]
        vocab = d.file(pre.get("vocab_file", md.VOCAB_FILE))
        return (
            loader.load_task_model(path),
            vocab if os.path.isfile(vocab) else None,
            pre.get("lower_case"),
        )
    source = read_source(path)
    heads = source.has_group(tensor_names.MLM) or source.has_group(tensor_names.NSP)
    model = loader.load_pretrainer(path) if heads else loader.load_encoder(path)
    return model, source.vocab_file, source.lower_case


def convert(input_path, output, to, overwrite=False, seq_length=128):
    """Converts `input_path` (any checkpoint kind) to `to` in `output`. Returns `output`."""
    if to not in TARGETS:
        raise ValueError(f"to: expected one of {TARGETS}, got {to!r}")
    if not os.path.exists(input_path) and not os.path.exists(str(input_path) + ".index"):
        raise CheckpointError(f"{input_path}: no such file or directory")
    output = os.path.abspath(output)
    ownership.check_apart(output, input_path, "--output", "--input")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise CheckpointError(f"{output}: exists and is not empty (pass overwrite to replace it)")
    if os.path.lexists(output) and not os.path.isdir(output):
        raise CheckpointError(f"{output}: exists and is not a directory")
    _check_replaceable(output)
    model, vocab, lower_case = _load(input_path)
    if vocab is None:
        log.warning("%s: no vocab.txt; the output has none either", input_path)
    if lower_case is None:
        lower_case = True
        log.warning("%s: casing unknown; assuming an uncased (lower-case) vocab", input_path)

    parent = os.path.dirname(output)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(output) + ".convert-")
    try:
        new = os.path.join(staging, "out")
        if to == "bert_tf":
            if hasattr(model, "blocks"):  # a bare encoder: give it (fresh) pre-training heads
                log.warning(
                    "%s: no pre-training head weights; the model dir gets freshly "
                    "initialized MLM/NSP heads",
                    input_path,
                )
                model = BertPretrainer(model)
            task = {"type": "pretraining"}
            if detect_kind(input_path) == "bert_tf":
                task = md.ModelDir(input_path).task()
            write_model_dir(
                new,
                model,
                vocab,
                lower_case,
                task=task,
                seq_length=seq_length,
                training={"converted_from": os.path.abspath(input_path)},
            )
        else:
            if not (hasattr(model, "mlm_head") or hasattr(model, "blocks")):
                log.warning(
                    "%s: a %s's task head has no %s equivalent; writing its encoder only",
                    input_path,
                    type(model).__name__,
                    to,
                )
                model = model.encoder
            if to == "hf":
                writers.save_hf(model, new, vocab, lower_case)
            else:
                writers.save_google(model, new, vocab)
        ownership.record(new, {name: "convert" for name in os.listdir(new)})
        apply_default_modes(new)  # 0755 dirs / 0644 files (umask respected), not 0700
        _swap_in(new, output, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("wrote %s (%s)", output, to)
    return output


def _check_replaceable(output):
    """An existing `output` is replaced only when it holds nothing but what bert-tf's runs
    or conversions wrote (bert_tf/ownership.py); a symlink is never replaced."""
    if os.path.islink(output):
        raise CheckpointError(f"{output}: is a symbolic link; give the real directory")
    if not os.path.isdir(output) or not os.listdir(output):
        return
    owned = ownership.owned_entries(output)
    other = sorted(
        n for n in os.listdir(output) if owned.get(n) not in ownership.RUN_WRITERS + ("internal",)
    )
    if other:
        raise CheckpointError(
            f"{output}: holds files bert-tf's runs and conversions did not "
            f"write ({ownership.listing(output, other)}); it is never "
            "replaced: choose another output directory"
        )


def _swap_in(new, output, staging):
    """Moves `new` to `output`; an old `output` goes to the staging dir (deleted by caller)."""
    if os.path.exists(output):
        os.replace(output, os.path.join(staging, "old"))
    os.replace(new, output)
