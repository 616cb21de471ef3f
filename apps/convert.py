"""Import any BERT checkpoint into a bert-tf model directory, or export one out.

    python -m apps.convert --input=HF_OR_GOOGLE_DIR --output=MODEL_DIR --to=bert_tf
    python -m apps.convert --input=MODEL_DIR --output=HF_DIR --to=hf
    python -m apps.convert --input=MODEL_DIR --output=GOOGLE_DIR --to=google

--input is anything `bert_tf.load_encoder` accepts: a bert-tf model directory, a Hugging Face
BERT directory (config.json + model.safetensors or pytorch_model.bin + vocab.txt), or an
original Google BERT directory (bert_config.json + bert_model.ckpt.* + vocab.txt).
"""

import sys

from absl import app, flags, logging

from bert_tf.checkpoints.convert import convert
from bert_tf.errors import BertTfError

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "input",
    None,
    "Checkpoint directory to read: bert-tf model dir, Hugging "
    "Face BERT dir or Google BERT dir (or a Google checkpoint prefix).",
)
flags.DEFINE_string(
    "output", None, "Directory to write; must not exist or be empty unless --overwrite."
)
flags.DEFINE_enum(
    "to",
    "bert_tf",
    ["bert_tf", "hf", "google"],
    "Output format: bert_tf (model dir with task 'pretraining'), hf "
    "(config.json + model.safetensors + vocab.txt) or google (bert_config.json + "
    "bert_model.ckpt + vocab.txt).",
)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace a non-empty --output directory, only if it "
    "holds nothing but what bert-tf's runs and conversions wrote (its "
    ".bert_tf_manifest.json); --output must not be, hold or lie inside --input.",
)
flags.DEFINE_integer(
    "seq_length",
    128,
    "Preprocessing sequence length recorded in a bert_tf "
    "model dir's config.json (--to=bert_tf only).",
)
flags.mark_flags_as_required(["input", "output"])


def main(argv):
    del argv
    try:
        out = convert(
            FLAGS.input,
            FLAGS.output,
            FLAGS.to,
            overwrite=FLAGS.overwrite,
            seq_length=FLAGS.seq_length,
        )
    except (BertTfError, FileExistsError, FileNotFoundError) as e:
        sys.exit(f"convert: {e}")
    logging.info("wrote %s", out)
    print(out)


if __name__ == "__main__":
    app.run(main)
