"""Exports a classifier model directory to a self-contained .tflite (tokenizer in the graph).

    python -m export.tflite --model_dir=DIR --output=FILE.tflite [--quantize={none,dynamic,float16}]

The graph takes ONE string (`text` string [1], plus `text_b` for pair tasks) and returns
`probabilities` float32 [1, C] and `label_id` int32 [1]; label names are written next to the
file as FILE.labels.txt (one per line). Tokenization uses tf.text's FastBertTokenizer (a TFLite
custom op): run it with

    from ai_edge_litert.interpreter import InterpreterWithCustomOps
    from tensorflow_text.core.pybinds import tflite_registrar
    interp = InterpreterWithCustomOps(model_content=open(FILE, "rb").read(),
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)
    runner = interp.get_signature_runner("serving_default")
    runner(text=np.array([b"some text"]))

Normalization difference (documented in export/README.md): FastBertTokenizer's normalizer for
uncased vocabs applies NFKC-style case folding before lower-casing + accent stripping, unlike the
original BERT (and bert_tf's SavedModel tokenizer): e.g. "ﬁ" -> "fi", "™" -> "tm", full-width
letters -> ASCII, "…" -> "...". `measure_tokenizer_agreement` counts how often that changes
the WordPiece ids on a corpus. Sequences are padded to their own length (batch 1 never pads).
"""

import os
import sys

import numpy as np
from absl import app, flags
from bert_tf.errors import BertTfError

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string("model_dir", None, "bert-tf model directory of a classify model.")
    flags.DEFINE_string("output", None, "Path of the .tflite file to write.")
    flags.DEFINE_enum("quantize", "none", ["none", "dynamic", "float16"], "Post-training "
                      "quantization: none (float32), dynamic (int8 weights, dynamic-range), "
                      "float16 (float16 weights).")
    flags.DEFINE_integer("seq_length", None, "Maximum packed length (default: the model dir's).")

MIN_BYTES_PER_PARAM = {"none": 3.5, "float16": 1.75, "dynamic": 0.9}


class TFLiteExportError(BertTfError, ValueError):
    """Bad input or a conversion that lost the weights, reported in one line."""


def build_tflite_module(model, vocab, lower_case, seq_length, label_count, pair=False):
    """A tf.Module whose serving_default runs FastBertTokenizer + packing + the classifier."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    tokenizer = tf_text.FastBertTokenizer(vocab=vocab, token_out_type=tf.int32,
                                          lower_case_nfd_strip_accents=bool(lower_case),
                                          unknown_token="[UNK]")
    budget = seq_length - (3 if pair else 2)

    def pieces(text):
        return tokenizer.tokenize(text).flat_values                  # [P] (batch of one)

    def run(ids, type_ids):
        ids = ids[None, :]                                          # [1, T]
        inputs = {"input_word_ids": ids, "input_mask": tf.ones_like(ids),
                  "input_type_ids": type_ids[None, :]}
        probs = tf.nn.softmax(model(inputs, training=False)["logits"], axis=-1)  # [1, C]
        return {"probabilities": probs,
                "label_id": tf.argmax(probs, axis=-1, output_type=tf.int32)}

    cls = tf.constant([cls_id], tf.int32)
    sep = tf.constant([sep_id], tf.int32)

    class TFLiteClassifier(tf.Module):
        pass

    module = TFLiteClassifier()
    module.model = model
    if pair:
        @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="text"),
                                      tf.TensorSpec([1], tf.string, name="text_b")])
        def serving_default(text, text_b):
            a, b = pieces(text), pieces(text_b)
            la, lb = tf.shape(a)[0], tf.shape(b)[0]
            # original BERT longest-first truncation of a pair, in closed form
            kb = tf.minimum(lb, tf.maximum(budget // 2, budget - la))
            ka = tf.minimum(la, budget - kb)
            a, b = a[:ka], b[:kb]
            ids = tf.concat([cls, a, sep, b, sep], 0)
            types = tf.concat([tf.zeros([ka + 2], tf.int32), tf.ones([kb + 1], tf.int32)], 0)
            return run(ids, types)
    else:
        @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="text")])
        def serving_default(text):
            a = pieces(text)[:budget]
            ids = tf.concat([cls, a, sep], 0)
            return run(ids, tf.zeros_like(ids))
    module.serving_default = serving_default
    return module


def convert(module, quantize="none"):
    """Freezes the variables into constants first: converting the function with its Keras 3
    resource variables yields READ_VARIABLE ops on never-initialized variables (NaN outputs,
    or a file without the weights)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    frozen = convert_variables_to_constants_v2(module.serving_default.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    if quantize in ("dynamic", "float16"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def make_interpreter(model_content):
    from ai_edge_litert.interpreter import InterpreterWithCustomOps
    from tensorflow_text.core.pybinds import tflite_registrar
    return InterpreterWithCustomOps(model_content=model_content,
                                    custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)


class TFLiteClassifier:
    """Runs an exported .tflite one text (pair) at a time."""

    def __init__(self, path_or_bytes):
        content = path_or_bytes if isinstance(path_or_bytes, bytes) else open(
            path_or_bytes, "rb").read()
        self.interpreter = make_interpreter(content)
        self.runner = self.interpreter.get_signature_runner("serving_default")

    def __call__(self, text, text_b=None):
        enc = lambda s: np.array([s if isinstance(s, bytes) else s.encode("utf-8")])  # noqa
        kwargs = {"text": enc(text)}
        if text_b is not None:
            kwargs["text_b"] = enc(text_b)
        out = self.runner(**kwargs)   # outputs come back as output_0.. (frozen function)
        probs = next(v for v in out.values() if v.dtype == np.float32)
        label = next(v for v in out.values() if v.dtype != np.float32)
        return probs[0], int(label[0])


def export_tflite(model_dir, output, quantize="none", seq_length=None, model=None):
    """Writes `output` (+ output.labels.txt); returns the file size in bytes."""
    from bert_tf.checkpoints.loader import load_task_model
    from export.saved_model import read_model_dir
    from export.text_graph import read_vocab
    config, vocab_file = read_model_dir(model_dir)
    task = config["task"]
    if task["type"] != "classify":
        raise TFLiteExportError(f"{model_dir}: task.type {task['type']!r}: the TFLite export "
                                f"supports classify models (use export.saved_model)")
    seq_length = int(seq_length or config["preprocessing"].get("seq_length", 128))
    model = model if model is not None else load_task_model(model_dir)
    vocab = read_vocab(vocab_file)
    module = build_tflite_module(model, vocab, config["preprocessing"].get("lower_case", True),
                                 seq_length, model.num_classes, pair=bool(task.get("text_b")))
    content = convert(module, quantize)
    params = int(model.count_params())
    if len(content) < MIN_BYTES_PER_PARAM[quantize] * params:
        raise TFLiteExportError(f"conversion lost the weights: {len(content)} bytes for "
                                f"{params} parameters ({quantize})")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(content)
    os.replace(tmp, output)
    labels = task.get("label_names") or [str(i) for i in range(model.num_classes)]
    with open(output + ".labels.txt.tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(labels) + "\n")
    os.replace(output + ".labels.txt.tmp", output + ".labels.txt")
    return len(content)


def main(argv):
    del argv
    for name in ("model_dir", "output"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    try:
        size = export_tflite(FLAGS.model_dir, FLAGS.output, FLAGS.quantize, FLAGS.seq_length)
    except (ValueError, OSError) as e:
        sys.exit(f"export.tflite: {str(e).splitlines()[0]}")
    print(f"{FLAGS.output}: {size} bytes ({FLAGS.quantize})")


if __name__ == "__main__":
    define_flags()
    app.run(main)


def compare_tokenizers(vocab, lower_case, texts):
    """Per text: are the WordPiece ids of the TFLite tokenizer (tf.text FastBertTokenizer) the
    same as the original-BERT tokenizer's (the SavedModel export's)? -> (bool array,
    [(text, tflite_tokens, bert_tokens)] for the differing texts)."""
    import tensorflow as tf
    import tensorflow_text as tf_text
    from bert_tf.text.tokenizer import BertTokenizer
    fast = tf_text.FastBertTokenizer(vocab=vocab, token_out_type=tf.int32,
                                     lower_case_nfd_strip_accents=bool(lower_case))
    exact = BertTokenizer(vocab=vocab, lower_case=lower_case)
    same, diffs = [], []
    for start in range(0, len(texts), 256):
        chunk = texts[start:start + 256]
        batch = tf.constant(chunk)
        a = fast.tokenize(batch)
        a = (a.merge_dims(1, -1) if a.ragged_rank > 1 else a).to_list()
        b = exact.tokenize(batch).to_list()
        for text, x, y in zip(chunk, a, b):
            same.append(x == y)
            if x != y:
                diffs.append((text, [vocab[i] for i in x], [vocab[i] for i in y]))
    return np.array(same, bool), diffs


def measure_tokenizer_agreement(vocab, lower_case, texts):
    """(fraction of texts with identical ids, up to 10 differing examples) - see
    compare_tokenizers."""
    same, diffs = compare_tokenizers(vocab, lower_case, texts)
    return float(same.mean()) if len(same) else 1.0, diffs[:10]
