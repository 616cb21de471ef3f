r"""Exports a task model directory to a self-contained .tflite (tokenizer and decoding in
the graph).

    python -m export.tflite --model_dir=DIR --output=FILE.tflite \
        [--quantize={none,dynamic,float16}] [--tokenizer={exact,fast}]

Tasks (export.tflite_tasks registers one graph per task type; inputs are string [1]). The
signature `serving_default` names its outputs as the SavedModel's serving_default does:
  classify  text [, text_b] -> probabilities float32 [1, C], label string [1], label_id
            int32 [1] (label names also in FILE.labels.txt); regression: score float32 [1]
  tag       text -> entity_text / entity_type string [E], entity_start / entity_end int32 [E]
            (character offsets, end exclusive), entity_score float32 [E], num_entities [1]
  squad     question, context -> answer string [1], answer_start / answer_end int32 [1]
            (character offsets into context, -1 for no answer), score float32 [1]
  multiple_choice  context [1], choices [C] (C = the model dir's num_choices) ->
            probabilities float32 [C], choice int32 [1] (TFLiteMultipleChoice refuses
            another number of choices before invoking, in one line)

The tokenizer is the original BERT algorithm (export.tflite_text, the same ids and offsets as
the SavedModel); `--tokenizer=fast` uses tf.text's FastBertTokenizer instead (NFKC case
folding: other ids on ~0.9% of real SMS; classify only). Run it with

    interp = InterpreterWithCustomOps(model_content=open(FILE, "rb").read(),
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)
    interp.get_signature_runner()(text=np.array([b"some text"]))   # {"label": ..., ...}

(or TensorFlow's tensorflow.lite.python.interpreter.InterpreterWithCustomOps). The graph
answers ONE input (a batch of two fails in RESHAPE); `TFLiteModel` answers lists row by row.
"""

import os
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags
from ai_edge_litert.interpreter import InterpreterWithCustomOps
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tensorflow_text.core.pybinds import tflite_registrar

from bert_tf import ownership
from bert_tf.atomic_io import atomic_write_bytes, atomic_write_text
from bert_tf.checkpoints.loader import load_task_model
from bert_tf.errors import BertTfError
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import load_vocab
from export import tflite_tasks
from export.saved_model import read_model_dir
from export.tflite_text import tokenizer_tflite

FLAGS = flags.FLAGS
TOKENIZERS = ("exact", "fast")


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string("model_dir", None, "bert-tf model directory of a classify, tag, "
                        "squad or multiple_choice model.")
    flags.DEFINE_string("output", None, "Path of the .tflite file to write.")
    flags.DEFINE_enum("quantize", "none", ["none", "dynamic", "float16"], "Post-training "
                      "quantization: none (float32), dynamic (int8 weights, dynamic-range), "
                      "float16 (float16 weights).")
    flags.DEFINE_integer("seq_length", None, "Maximum packed length (default: the model dir's).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing --output, only if an earlier "
                      "export.tflite wrote it (recorded in the output directory's "
                      ".bert_tf_manifest.json); any other file is never replaced.")
    flags.DEFINE_enum("tokenizer", "exact", list(TOKENIZERS), "In-graph tokenizer: exact "
                      "(the original BERT algorithm, as the SavedModel) or fast (tf.text "
                      "FastBertTokenizer, NFKC case folding; classify only).")


MIN_BYTES_PER_PARAM = {"none": 3.5, "float16": 1.75, "dynamic": 0.9}


class TFLiteExportError(BertTfError, ValueError):
    """Bad input or a conversion that lost the weights, reported in one line."""


class TFLiteBatchError(BertTfError, ValueError):
    """Inputs of one call with different numbers of rows."""


class TFLiteInputError(BertTfError, ValueError):
    """An input the converted graph cannot take (checked before the interpreter runs)."""


def build_tflite_module(model, vocab, lower_case, seq_length, task, tokenizer="exact"):
    """A tf.Module whose `serving_default` (string [1] inputs) tokenizes, runs the model and
    decodes for `task["type"]`; also sets `input_names`."""
    kind = task["type"]
    if kind not in tflite_tasks.GRAPHS:
        raise TFLiteExportError(f"task.type {kind!r}: the TFLite export supports "
                                f"{sorted(tflite_tasks.GRAPHS)} (use export.saved_model)")
    if tokenizer not in TOKENIZERS:
        raise TFLiteExportError(f"tokenizer {tokenizer!r}: expected one of {TOKENIZERS}")
    if tokenizer == "fast" and kind != "classify":
        raise TFLiteExportError(f"task.type {kind!r} needs character offsets: only "
                                f"--tokenizer=exact gives them")
    tok = tflite_tasks.Tokenizer(vocab, lower_case, tokenizer)
    module = tf.Module()
    module.model = model
    module.input_names, module.serving_default = tflite_tasks.GRAPHS[kind](
        model, vocab, task, int(seq_length), tok)
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
        [named.get_concrete_function()], tf.Module())
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


def make_interpreter(model_content):
    return InterpreterWithCustomOps(model_content=model_content,
                                    custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)


def _read_names(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


class TFLiteModel:
    """Runs an exported .tflite: `model(text=...)` (or question=, context=, text_b=) with a
    string -> dict of numpy outputs keyed by the signature's output names (entity_text,
    probabilities, ...); with lists of strings -> a list of such dicts, answered row by row
    (the graph takes one row). Files exported before the signatures carried names (outputs
    output_0, output_1, ...) are mapped by their FILE.outputs.txt."""

    def __init__(self, path_or_bytes):
        if isinstance(path_or_bytes, bytes):
            content, path = path_or_bytes, None
        else:
            path = path_or_bytes
            with open(path, "rb") as f:
                content = f.read()
        self.interpreter = make_interpreter(content)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        outputs = sorted(self.runner.get_output_details())
        self.rename = {}
        if outputs and all(k.startswith("output_") for k in outputs):
            names = _read_names(path + ".outputs.txt") if path else []
            if len(names) != len(outputs):
                raise TFLiteExportError(f"{path or 'model bytes'}: unnamed outputs {outputs} "
                                        f"and no FILE.outputs.txt naming them: re-export it "
                                        f"with python -m export.tflite")
            self.rename = {f"output_{i}": name for i, name in enumerate(names)}
        self.output_names = sorted(self.rename.get(k, k) for k in outputs)

    def row(self, inputs):
        """One row (a dict of inputs): each input a string, or a list of strings (multiple
        choice's choices) -> dict of named numpy outputs."""
        out = self.runner(**{k: _encode_strings(v) for k, v in inputs.items()})
        return {self.rename.get(k, k): v for k, v in out.items()}

    def __call__(self, **inputs):
        lists = {k: v for k, v in inputs.items() if isinstance(v, (list, tuple, np.ndarray))}
        if not lists:
            return self.row(inputs)
        if len(lists) != len(inputs) or len({len(v) for v in lists.values()}) != 1:
            raise TFLiteBatchError(f"inputs {sorted(inputs)}: pass all as strings or all as "
                                   f"lists of the same length, got lengths "
                                   f"{ {k: len(v) for k, v in lists.items()} }")
        n = len(next(iter(lists.values())))
        return [self.row({k: v[i] for k, v in inputs.items()}) for i in range(n)]


def _encode_strings(value):
    """A string -> bytes [1]; a list of strings -> bytes [n]."""
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    return np.array([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values])


class TFLiteMultipleChoice(TFLiteModel):
    """A multiple-choice .tflite: `mc(context, choices)` with a string and its C choices ->
    (probabilities [C], choice); with a list of contexts and a list of choice lists -> a list
    of such pairs (row by row). C is fixed when the model is converted (the model dir's
    num_choices; the static shape of the `probabilities` output, `num_choices` here): another
    number of choices is refused before the interpreter runs (TFLiteInputError), every time
    (a graph run with another count fails in RESHAPE and leaves the interpreter resized)."""

    def __init__(self, path_or_bytes):
        super().__init__(path_or_bytes)
        key = {v: k for k, v in self.rename.items()}.get("probabilities", "probabilities")
        self.num_choices = int(self.runner.get_output_details()[key]["shape"][-1])

    def row(self, inputs):
        choices = inputs["choices"]
        n = 1 if isinstance(choices, (str, bytes)) else len(choices)
        if n != self.num_choices:
            raise TFLiteInputError(
                f"choices: expected {self.num_choices} choices (the number this model was "
                f"converted with, its model dir's num_choices), got {n}")
        return super().row(inputs)

    def __call__(self, context, choices):  # noqa: D102 (the multiple-choice inputs)
        if isinstance(context, (str, bytes)):
            out = self.row({"context": context, "choices": list(choices)})
            return out["probabilities"], int(out["choice"][0])
        if len(context) != len(choices):
            raise TFLiteBatchError(f"{len(context)} contexts but {len(choices)} choice lists: "
                                   f"expected one choice list per context")
        return [self(c, ch) for c, ch in zip(context, choices)]


class TFLiteClassifier(TFLiteModel):
    """A classifier .tflite: `clf(text[, text_b])` -> (probabilities [C], label_id)."""

    def __call__(self, text, text_b=None):  # noqa: D102 (one row, the classify inputs)
        inputs = {"text": text} if text_b is None else {"text": text, "text_b": text_b}
        out = super().__call__(**inputs)
        if isinstance(out, list):
            return [(o["probabilities"][0], int(o["label_id"][0])) for o in out]
        return out["probabilities"][0], int(out["label_id"][0])


WRITER = "export.tflite"


def output_files(output, task_type):
    """The files an export to `output` writes: the model and its sidecars."""
    return [output] + (
        [output + ".labels.txt"] if task_type == "classify" else [])


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


def export_tflite(model_dir, output, quantize="none", seq_length=None, model=None,
                  tokenizer="exact", overwrite=False):
    """Writes `output` (and output.labels.txt for classifiers: the label names, one per
    line, in label_id order); returns the file size in bytes. An existing output is replaced
    only when an earlier export.tflite wrote it and `overwrite` is set (see check_output)."""
    config, vocab_file = read_model_dir(model_dir)
    task = config["task"]
    names = check_output(output, task["type"], overwrite)
    seq_length = int(seq_length or config["preprocessing"].get("seq_length", 128))
    vocab = load_vocab(vocab_file)
    if task["type"] not in tflite_tasks.GRAPHS:
        raise TFLiteExportError(f"{model_dir}: task.type {task['type']!r}: the TFLite export "
                                f"supports {sorted(tflite_tasks.GRAPHS)} (use "
                                f"export.saved_model)")
    model = model if model is not None else load_task_model(model_dir)
    module = build_tflite_module(model, vocab, config["preprocessing"].get("lower_case", True),
                                 seq_length, task, tokenizer)
    content = convert(module, quantize)
    params = int(model.count_params())
    if len(content) < MIN_BYTES_PER_PARAM[quantize] * params:
        raise TFLiteExportError(f"conversion lost the weights: {len(content)} bytes for "
                                f"{params} parameters ({quantize})")
    directory = os.path.dirname(os.path.abspath(output))
    check_output(output, task["type"], overwrite)    # again: the conversion took a while
    ownership.record(directory, {name: WRITER for name in names})
    atomic_write_bytes(output, content)
    if task["type"] == "classify":
        labels = task.get("label_names") or [str(i) for i in range(model.num_classes)]
        atomic_write_text(output + ".labels.txt", "\n".join(labels) + "\n")
    return len(content)


def main(argv):
    del argv
    for name in ("model_dir", "output"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    try:
        size = export_tflite(FLAGS.model_dir, FLAGS.output, FLAGS.quantize, FLAGS.seq_length,
                             tokenizer=FLAGS.tokenizer, overwrite=FLAGS.overwrite)
    except (BertTfError, ValueError, OSError) as e:
        sys.exit(f"export.tflite: {str(e).splitlines()[0]}")
    print(f"{FLAGS.output}: {size} bytes ({FLAGS.quantize}, {FLAGS.tokenizer} tokenizer)")


if __name__ == "__main__":
    define_flags()
    app.run(main)


def compare_tokenizers(vocab, lower_case, texts, tokenizer="fast"):
    """Per text: are the WordPiece ids of a TFLite tokenizer (run by the LiteRT interpreter)
    the same as the original-BERT tokenizer's (the SavedModel export's)? -> (bool array,
    [(text, tflite_tokens, bert_tokens)] for the differing texts)."""
    runner = make_interpreter(tokenizer_tflite(vocab, lower_case, tokenizer == "exact")
                              ).get_signature_runner("serving_default")
    exact = BertTokenizer(vocab=vocab, lower_case=lower_case)
    same, diffs = [], []
    for start in range(0, len(texts), 256):
        chunk = texts[start:start + 256]
        want = exact.tokenize(tf.constant(chunk)).to_list()
        for text, y in zip(chunk, want):
            x = runner(text=np.array([text.encode("utf-8")]))["ids"].tolist()
            same.append(x == y)
            if x != y:
                diffs.append((text, [vocab[i] for i in x], [vocab[i] for i in y]))
    return np.array(same, bool), diffs


def measure_tokenizer_agreement(vocab, lower_case, texts, tokenizer="fast"):
    """(fraction of texts with identical ids, up to 10 differing examples) - see
    compare_tokenizers."""
    same, diffs = compare_tokenizers(vocab, lower_case, texts, tokenizer)
    return float(same.mean()) if len(same) else 1.0, diffs[:10]
