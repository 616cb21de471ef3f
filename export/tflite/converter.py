"""Converts a task model directory to a self-contained .tflite (tokenizer and decoding in the
graph), the library behind `python -m export.tflite` (cli.py).

The graph is the task's declaration (`Task.tflite_graph(ctx)`, bert_tf/tasks/<task>/tflite.py)
over a TFLiteContext (bert_tf/serving_graph/context.py); here: freezing, conversion, the size
check against lost weights, and writing the file (never over a file another writer made).
"""

import os

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from bert_tf import ownership
from bert_tf.atomic_io import atomic_write_bytes, atomic_write_text
from bert_tf.checkpoints.loader import load_task_model
from bert_tf.serving_graph.context import TFLiteContext
from bert_tf.serving_graph.tflite_text import TFLiteTokenizer
from bert_tf.tasks import get_task
from bert_tf.tasks.base import declares
from bert_tf.tasks.registry import UnknownTaskError
from bert_tf.text.vocab import load_vocab
from export.serving.writer import exporting_tasks, read_model_dir
from export.tflite.errors import TFLiteExportError

TOKENIZERS = TFLiteTokenizer.KINDS
MIN_BYTES_PER_PARAM = {"none": 3.5, "float16": 1.75, "dynamic": 0.9}


def tflite_task(kind):
    """The task class of `kind` if it declares a TFLite graph (TFLiteExportError otherwise)."""
    try:
        declared = declares(get_task(kind), "tflite_graph")
    except UnknownTaskError:
        declared = False
    if not declared:
        raise TFLiteExportError(
            f"task.type {kind!r}: the TFLite export supports "
            f"{exporting_tasks('tflite_graph')} (use export.saved_model)"
        )
    return get_task(kind)


def build_tflite_module(model, vocab, lower_case, seq_length, task, tokenizer="exact"):
    """A tf.Module whose `serving_default` (string [1] inputs) tokenizes, runs the model and
    decodes as `task["type"]` declares (Task.tflite_graph); also sets `input_names`."""
    task_cls = tflite_task(task["type"])
    if tokenizer not in TFLiteTokenizer.KINDS:
        raise TFLiteExportError(f"tokenizer {tokenizer!r}: expected one of {TFLiteTokenizer.KINDS}")
    if tokenizer not in task_cls.tflite_tokenizers():
        raise TFLiteExportError(
            f"task.type {task['type']!r} needs character offsets: only --tokenizer=exact gives them"
        )
    ctx = TFLiteContext(model, task, seq_length, TFLiteTokenizer(vocab, lower_case, tokenizer))
    module = tf.Module()
    module.model = model
    module.input_names, module.serving_default = task_cls.tflite_graph(ctx)
    return module


def convert(module, quantize="none"):
    """Freezes the variables into constants first: converting the function with its Keras 3
    resource variables yields READ_VARIABLE ops on never-initialized variables (NaN outputs,
    or a file without the weights). The frozen function returns a flat list (the converter
    would name its outputs output_0, output_1, ...), so it is wrapped in one returning the
    original dict: the .tflite signature's outputs carry the SavedModel's names."""
    function = module.serving_default.get_concrete_function()
    frozen = convert_variables_to_constants_v2(function)
    names = output_names(module)

    @tf.function(input_signature=function.structured_input_signature[0])
    def named(*inputs):
        return dict(zip(names, frozen(*inputs)))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [named.get_concrete_function()], tf.Module()
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    if quantize in ("dynamic", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def output_names(module):
    """The task graph's output names, sorted: the frozen function returns its outputs in that
    order (nest.flatten's order of a dict)."""
    return sorted(module.serving_default.get_concrete_function().structured_outputs)


WRITER = "export.tflite"


def output_files(output, task_type):
    """The files an export to `output` writes: the model and its sidecars."""
    return [output] + ([output + ".labels.txt"] if get_task(task_type).tflite_label_file() else [])


def check_output(output, task_type, overwrite=False):
    """Refuses (one line, before any work) an existing `output` or sidecar unless an earlier
    export.tflite wrote it (the output dir's ownership record, bert_tf/ownership.py) and
    `overwrite` is set. Returns the names to record."""
    directory = os.path.dirname(os.path.abspath(output))
    if os.path.isdir(output):
        raise TFLiteExportError(f"--output={output}: is a directory; expected a file path")
    names = [os.path.basename(p) for p in output_files(output, task_type)]
    try:
        return ownership.check_replace(directory, names, WRITER, overwrite)
    except ownership.OwnershipError as e:
        raise TFLiteExportError(str(e)) from None


def export_tflite(
    model_dir,
    output,
    quantize="none",
    seq_length=None,
    model=None,
    tokenizer="exact",
    overwrite=False,
):
    """Writes `output` (and output.labels.txt for classifiers: the label names, one per
    line, in label_id order); returns the file size in bytes. An existing output is replaced
    only when an earlier export.tflite wrote it and `overwrite` is set (see check_output)."""
    config, vocab_file = read_model_dir(model_dir)
    task = config["task"]
    task_cls = tflite_task(task["type"])
    names = check_output(output, task["type"], overwrite)
    seq_length = int(seq_length or config["preprocessing"].get("seq_length", 128))
    vocab = load_vocab(vocab_file)
    model = model if model is not None else load_task_model(model_dir)
    module = build_tflite_module(
        model, vocab, config["preprocessing"].get("lower_case", True), seq_length, task, tokenizer
    )
    content = convert(module, quantize)
    params = int(model.count_params())
    if len(content) < MIN_BYTES_PER_PARAM[quantize] * params:
        raise TFLiteExportError(
            f"conversion lost the weights: {len(content)} bytes for "
            f"{params} parameters ({quantize})"
        )
    directory = os.path.dirname(os.path.abspath(output))
    check_output(output, task["type"], overwrite)  # again: the conversion took a while
    ownership.record(directory, {name: WRITER for name in names})
    atomic_write_bytes(output, content)
    if task_cls.tflite_label_file():
        labels = task.get("label_names") or [str(i) for i in range(model.num_classes)]
        atomic_write_text(output + ".labels.txt", "\n".join(labels) + "\n")
    return len(content)
