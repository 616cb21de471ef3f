"""The `python -m export.tflite` command: flags and main (the usage: export/tflite/__init__.py)."""

import sys

from absl import flags

from bert_tf.errors import BertTfError
from export.tflite.converter import TOKENIZERS, export_tflite

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string(
        "model_dir",
        None,
        "bert-tf model directory of a classify, tag, squad or multiple_choice model.",
    )
    flags.DEFINE_string("output", None, "Path of the .tflite file to write.")
    flags.DEFINE_enum(
        "quantize",
        "none",
        ["none", "dynamic", "float16"],
        "Post-training "
        "quantization: none (float32), dynamic (int8 weights, dynamic-range), "
        "float16 (float16 weights).",
    )
    flags.DEFINE_integer("seq_length", None, "Maximum packed length (default: the model dir's).")
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Replace an existing --output, only if an earlier "
        "export.tflite wrote it (recorded in the output directory's "
        ".bert_tf_manifest.json); any other file is never replaced.",
    )
    flags.DEFINE_enum(
        "tokenizer",
        "exact",
        list(TOKENIZERS),
        "In-graph tokenizer: exact "
        "(the original BERT algorithm, as the SavedModel) or fast (tf.text "
        "FastBertTokenizer, NFKC case folding; classify only).",
    )


def main(argv):
    del argv
    for name in ("model_dir", "output"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    try:
        size = export_tflite(
            FLAGS.model_dir,
            FLAGS.output,
            FLAGS.quantize,
            FLAGS.seq_length,
            tokenizer=FLAGS.tokenizer,
            overwrite=FLAGS.overwrite,
        )
    except (BertTfError, ValueError, OSError) as e:
        sys.exit(f"export.tflite: {str(e).splitlines()[0]}")
    print(f"{FLAGS.output}: {size} bytes ({FLAGS.quantize}, {FLAGS.tokenizer} tokenizer)")
