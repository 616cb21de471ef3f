"""Learn a WordPiece vocab (vocab.txt) from plain-text files.

    python -m apps.build_vocab --input_files='corpus/*.txt' --output=vocab.txt
                               --vocab_size=30522 --lower_case

Words are found by the same normalization and pre-tokenization as the project's BertTokenizer
(original BERT rules), the input is streamed, and the vocab starts with
[PAD] [UNK] [CLS] [SEP] [MASK], then characters, "##" characters and the learnt pieces.
"""

import json
import os
import sys

from absl import app, flags

from bert_tf.text import vocab as vocab_lib
from bert_tf.text import vocab_builder

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "input_files",
    None,
    "Comma-separated globs of UTF-8 text files (any line layout; empty lines are skipped).",
)
flags.DEFINE_string(
    "output", None, "Path of the vocab file to write (one token per line; written atomically)."
)
flags.DEFINE_integer(
    "vocab_size",
    30522,
    "Number of tokens in the vocab, special tokens "
    "included (fewer only if the corpus is too small).",
)
flags.DEFINE_bool(
    "lower_case",
    True,
    "Uncased vocab: lower-case and strip accents before "
    "learning (--nolower_case for a cased vocab).",
)
flags.DEFINE_integer("min_frequency", 2, "Lowest count a piece may have to be learnt.")
flags.DEFINE_integer("max_lines", None, "Read at most this many non-empty lines (default: all).")
flags.DEFINE_integer(
    "max_unique_chars",
    1000,
    "Alphabet size limit: words with rarer "
    "characters are not learnt from (those characters become [UNK]).",
)
flags.DEFINE_list(
    "reserved_tokens",
    [],
    "Extra tokens placed right after the five special tokens, e.g. [unused0],[unused1].",
)
flags.DEFINE_integer("batch_size", 4096, "Lines per pre-tokenization batch.")
flags.DEFINE_bool("overwrite", False, "Replace --output if it exists.")
flags.mark_flags_as_required(["input_files", "output"])


def main(argv):
    del argv
    if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
        sys.exit(f"build_vocab: {FLAGS.output} exists (pass --overwrite to replace it)")
    try:
        stats = vocab_builder.build_vocab_file(
            FLAGS.input_files,
            FLAGS.output,
            vocab_size=FLAGS.vocab_size,
            lower_case=FLAGS.lower_case,
            min_frequency=FLAGS.min_frequency,
            max_lines=FLAGS.max_lines,
            max_unique_chars=FLAGS.max_unique_chars,
            reserved_tokens=FLAGS.reserved_tokens,
            batch_size=FLAGS.batch_size,
            log=lambda m: print(m, file=sys.stderr),
        )
    except (vocab_builder.VocabBuildError, vocab_lib.VocabError, OSError) as e:
        sys.exit(f"build_vocab: {e}")
    print(json.dumps(stats))


if __name__ == "__main__":
    app.run(main)
