r"""Create BERT pre-training records (masked LM + next sentence) from text files.

    python -m apps.create_pretraining_data --input_files='corpus/*.txt' \
        --output_dir=data/pretrain --vocab_file=vocab.txt \
        --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5 \
        --num_shards=16 --num_workers=4

Input: one sentence per line with a blank line between documents (the original BERT format),
or plain prose (blank-line-separated blocks, split into sentences for you); --input_format=auto
decides per file. The corpus is streamed in chunks, so it can be far larger than memory.

Output: `<prefix>-NNNNN-of-MMMMM.tfrecord` shards with google-research/bert's feature names
and `<prefix>.metadata.json` (settings, counts, vocab hash) that the reader checks. The same
inputs, seed and --num_shards give byte-identical files for any --num_workers.
--max_predictions_per_seq=0 writes unmasked records for dynamic masking at training time.

--runner picks the engine: `local` (default) runs on this host's processes; an Apache Beam
runner name runs the same data creation as a Beam pipeline, with the same instances for the
same seed. Beam lives in its own environment (apache-beam moves protobuf and pyarrow under the
pinned stack): `python -m venv --system-site-packages venv-beam && venv-beam/bin/pip install -r
requirements-beam.txt`, then run this app with venv-beam/bin/python:

    python -m apps.create_pretraining_data ... --runner=DirectRunner --num_workers=2
    python -m apps.create_pretraining_data --input_files='gs://B/corpus/*.txt' \
        --output_prefix=gs://B/records/train ... --runner=DataflowRunner \
        --beam_pipeline_options='--project=P --region=R --temp_location=gs://B/tmp'

--pack writes packed rows of up to --max_sequences_per_row sequences each instead (see
bert_tf/data/pretraining/packing.py; for dynamic masking, pack at training time:
apps.pretrain --pack).
With any --runner, the instances are first written under '<prefix>.unpacked', then this host
streams them through the packer into '<prefix>' and removes them; every file goes through
tf.io.gfile, so a gs:// prefix works with a Beam runner too:

    python -m apps.create_pretraining_data ... --pack --runner=DataflowRunner \
        --output_prefix=gs://B/records/train512 --beam_pipeline_options='...'
"""

import os
import sys

from absl import app, flags, logging

from bert_tf.data.pretraining import create as pd
from bert_tf.data.pretraining import pack_records, packing
from bert_tf.errors import BertTfError

FLAGS = flags.FLAGS
# The README's command ("Scaling data creation"): a separate venv, because apache-beam 2.77
# moves protobuf and pyarrow under the pinned TF stack; it still sees that stack.
BEAM_INSTALL = (
    "python -m venv --system-site-packages venv-beam && venv-beam/bin/pip install "
    "-r requirements-beam.txt"
)
flags.DEFINE_string("input_files", None, "Comma-separated globs of input text files (UTF-8).")
flags.DEFINE_string(
    "output_dir",
    None,
    "Directory for the shards, named "
    "'pretraining-NNNNN-of-MMMMM.tfrecord' (or use --output_prefix).",
)
flags.DEFINE_string(
    "output_prefix",
    None,
    "Path prefix of the shards: '<prefix>-NNNNN-of-MMMMM.tfrecord' and '<prefix>.metadata.json'.",
)
flags.DEFINE_string(
    "vocab_file",
    None,
    "WordPiece vocab (one token per line) with [PAD], [UNK], [CLS], [SEP] and [MASK].",
)
flags.DEFINE_bool(
    "lower_case",
    None,
    "Lower-case and strip accents before WordPiece "
    "(uncased vocab). Default: inferred from the vocab (uncased if no token "
    "has an upper-case letter).",
)
flags.DEFINE_integer(
    "max_seq_length", 128, "Tokens per instance, including [CLS] and the two [SEP]."
)
flags.DEFINE_integer(
    "max_predictions_per_seq",
    20,
    "Masked-LM predictions per instance "
    "(at least masked_lm_prob * max_seq_length); 0 = unmasked records for "
    "dynamic masking.",
)
flags.DEFINE_float(
    "masked_lm_prob",
    0.15,
    "Fraction of tokens masked (80% [MASK], 10% random token, 10% unchanged).",
)
flags.DEFINE_float(
    "short_seq_prob",
    0.1,
    "Probability of a shorter random target length for "
    "a document, so the model also sees short sequences.",
)
flags.DEFINE_integer(
    "dupe_factor", 10, "Passes over the input, each with different segment pairs and masks."
)
flags.DEFINE_integer(
    "random_seed", 12345, "Seed: same inputs, seed and num_shards give identical output."
)
flags.DEFINE_integer(
    "num_shards", 1, "Number of output TFRecord files (instances are dealt round-robin)."
)
flags.DEFINE_integer(
    "num_workers",
    1,
    "Worker processes that tokenize and build instances "
    "(use the number of cores); the output does not depend on it.",
)
flags.DEFINE_bool(
    "whole_word_masking",
    False,
    "Mask all WordPieces of a word together ('##' pieces continue the previous word).",
)
flags.DEFINE_enum(
    "input_format",
    "auto",
    ["sentences", "prose", "auto"],
    "sentences: one sentence per line, blank line between documents; prose: "
    "blank-line-separated blocks of running text, split into sentences by rules; "
    "auto: decide per file from its first 200 lines.",
)
flags.DEFINE_enum(
    "tokenizer",
    "bert",
    ["bert", "pretokenized"],
    "bert: the original BERT tokenizer (BasicTokenizer + WordPiece); "
    "pretokenized: the text already holds space-separated WordPieces.",
)
flags.DEFINE_integer(
    "chunk_sentences",
    10000,
    "Window size in corpus sentences: documents "
    "starting in the same block of this many sentences (blocks joined to at "
    "least two documents) are processed together, and random next-segments "
    "are drawn from that window; bounds memory. Changes the output.",
)
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace shards already present under the output "
    "prefix, only those bert-tf wrote (the output directory's "
    ".bert_tf_manifest.json, or a bert-tf metadata file listing them).",
)
flags.DEFINE_float("progress_seconds", 10.0, "Seconds between progress log lines.")
flags.DEFINE_string(
    "runner",
    "local",
    "Engine: 'local' = processes on this host "
    "(--num_workers); or an Apache Beam runner that runs the same data creation "
    "as a pipeline, with the same instances for the same seed: DirectRunner "
    "(embedded, --num_workers processes), DataflowRunner, FlinkRunner, "
    "SparkRunner, PortableRunner, PrismRunner. Beam runners need Apache Beam in "
    "its own environment: " + BEAM_INSTALL + ".",
)
flags.DEFINE_string(
    "beam_pipeline_options",
    "",
    "Options passed through to the Beam runner, "
    "e.g. '--project=P --region=R --temp_location=gs://B/tmp "
    "--sdk_container_image=IMAGE' for Dataflow or '--flink_master=HOST:8081' "
    "for Flink. Only with a Beam --runner.",
)
flags.DEFINE_bool(
    "pack",
    False,
    "Write packed rows: several sequences per row (best-fit "
    "decreasing over --pack_buffer_size sequences), with per-token sequence ids, "
    "positions restarting per sequence, and each sequence's [CLS] position and "
    "NSP label. Needs masked records (--max_predictions_per_seq > 0).",
)
flags.DEFINE_integer(
    "max_sequences_per_row",
    3,
    "With --pack: sequences per row at most "
    "(1 .. max_seq_length // 5: a sequence has >= 5 tokens).",
)
flags.DEFINE_integer(
    "max_predictions_per_row",
    None,
    "With --pack: masked-LM slots per row. "
    "Default: max(P, min(S * P, ceil(masked_lm_prob * max_seq_length) + S)); "
    "allowed: P .. max(P, min(S * P, max_seq_length)).",
)
flags.DEFINE_integer(
    "pack_buffer_size",
    4096,
    "With --pack: consecutive sequences packed together (>= 1; larger = fuller rows, more memory).",
)

DEFAULT_PREFIX_NAME = "pretraining"


def _check_pack_output(prefix):
    """Refuses (or with --overwrite clears, if bert-tf wrote them) existing packed output;
    paths or URIs (gfile)."""
    existing = pack_records.existing_outputs(prefix)
    if existing and not FLAGS.overwrite:
        raise SystemExit(
            f"create_pretraining_data: {existing[0]}: output already exists "
            f"({len(existing)} files under prefix {prefix}); pass --overwrite to "
            "replace them"
        )
    try:
        inputs = [("--input_files", f) for f in pd.expand_input_files(FLAGS.input_files)]
        record = pd.check_outputs(
            prefix, FLAGS.num_shards, FLAGS.overwrite, inputs + [("--vocab_file", FLAGS.vocab_file)]
        )
    except BertTfError as e:
        raise SystemExit(f"create_pretraining_data: {e}") from None
    pack_records.remove_outputs(prefix)
    return record


def _pack(meta, unpacked_prefix, prefix, record):
    """Packs the records just written under `unpacked_prefix` into `prefix`, removes the
    unpacked ones, then `record()` records the packed ones as bert-tf's."""
    try:
        packed = pack_records.pack_record_files(
            unpacked_prefix,
            prefix,
            max_sequences_per_row=FLAGS.max_sequences_per_row,
            max_predictions_per_row=FLAGS.max_predictions_per_row,
            num_shards=FLAGS.num_shards,
            buffer_size=FLAGS.pack_buffer_size,
            seed=FLAGS.random_seed,
        )
    finally:
        pack_records.remove_outputs(unpacked_prefix)
    record()
    info = packed["packing"]
    print(
        f"packed {info['sequences']} sequences into {info['rows']} rows of up to "
        f"{info['max_sequences_per_row']}: padding {100 * info['padding_share_unpacked']:.1f}% "
        f"-> {100 * info['padding_share_packed']:.1f}% of the tokens"
    )
    packed["elapsed_seconds"] = meta.get("elapsed_seconds", 0.0)
    return packed


def _log_progress(info):
    logging.info(
        "%s%d lines (%.0f lines/s, %.0f sentences/s), %d documents, %d instances written, %.1f s",
        "done: " if info["final"] else "",
        info["lines"],
        info["lines_per_second"],
        info["sentences_per_second"],
        info["documents"],
        info["instances"],
        info["elapsed_seconds"],
    )


def _run_beam(prefix, config, factory):
    try:
        # apache-beam is optional (requirements-beam.txt): imported only for a Beam --runner.
        from bert_tf.data.pretraining import beam_pipeline
    except ImportError as e:
        raise pd.PretrainingDataError(
            f"--runner={FLAGS.runner} needs Apache Beam ({e}), which lives in its own "
            "environment (it moves protobuf and pyarrow under the pinned stack): "
            f"{BEAM_INSTALL}, then run venv-beam/bin/python -m apps.create_pretraining_data "
            "with the same flags"
        ) from None
    return beam_pipeline.create_pretraining_data_beam(
        FLAGS.input_files,
        prefix,
        FLAGS.vocab_file,
        config=config,
        lower_case=FLAGS.lower_case,
        num_shards=FLAGS.num_shards,
        num_workers=FLAGS.num_workers,
        tokenizer_factory=factory,
        overwrite=FLAGS.overwrite,
        runner=FLAGS.runner,
        pipeline_args=FLAGS.beam_pipeline_options,
    )


def main(argv):
    del argv
    if not FLAGS.input_files:
        sys.exit("create_pretraining_data: --input_files is required")
    if not FLAGS.vocab_file:
        sys.exit("create_pretraining_data: --vocab_file is required")
    if bool(FLAGS.output_dir) == bool(FLAGS.output_prefix):
        sys.exit("create_pretraining_data: pass exactly one of --output_dir or --output_prefix")
    prefix = FLAGS.output_prefix or os.path.join(FLAGS.output_dir, DEFAULT_PREFIX_NAME)
    config = pd.CreationConfig(
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob,
        dupe_factor=FLAGS.dupe_factor,
        random_seed=FLAGS.random_seed,
        whole_word_masking=FLAGS.whole_word_masking,
        input_format=FLAGS.input_format,
        chunk_sentences=FLAGS.chunk_sentences,
    )
    if FLAGS.pack and FLAGS.max_predictions_per_seq == 0:
        sys.exit(
            "create_pretraining_data: --pack needs masked records "
            "(--max_predictions_per_seq > 0); for dynamic masking pack at training time "
            "with apps.pretrain --pack"
        )
    try:  # every setting, before any input is read (packing comes after the whole pass)
        config.validate()
        if FLAGS.pack:
            packing.check_settings(
                FLAGS.max_seq_length,
                FLAGS.max_predictions_per_seq,
                FLAGS.max_sequences_per_row,
                FLAGS.max_predictions_per_row,
                FLAGS.pack_buffer_size,
                FLAGS.masked_lm_prob,
            )
    except BertTfError as e:
        sys.exit(f"create_pretraining_data: {e}")
    factory = None
    if FLAGS.tokenizer == "pretokenized":
        factory = pd.PretokenizedFactory(FLAGS.vocab_file, bool(FLAGS.lower_case))
    final_prefix, record = prefix, None
    if FLAGS.pack:
        record = _check_pack_output(final_prefix)
        prefix = final_prefix + ".unpacked"
    try:
        if FLAGS.runner == "local":
            if FLAGS.beam_pipeline_options:
                raise pd.PretrainingDataError(
                    "--beam_pipeline_options needs a Beam --runner (e.g. DirectRunner), got "
                    "--runner=local"
                )
            meta = pd.create_pretraining_data(
                FLAGS.input_files,
                prefix,
                FLAGS.vocab_file,
                config=config,
                lower_case=FLAGS.lower_case,
                num_shards=FLAGS.num_shards,
                num_workers=FLAGS.num_workers,
                tokenizer_factory=factory,
                overwrite=FLAGS.overwrite,
                progress=_log_progress,
                progress_every_seconds=FLAGS.progress_seconds,
            )
        else:
            meta = _run_beam(prefix, config, factory)
        if FLAGS.pack:
            meta = _pack(meta, prefix, final_prefix, record)
    except BertTfError as e:
        sys.exit(f"create_pretraining_data: {e}")
    counts = meta["counts"]
    print(
        f"wrote {counts['instances']} instances from {counts['documents']} documents "
        f"({counts['sentences']} sentences) to {FLAGS.num_shards} shards "
        f"{final_prefix}-*-of-{FLAGS.num_shards:05d}.tfrecord in "
        f"{meta['elapsed_seconds']:.1f} s "
        f"({counts['sentences'] / meta['elapsed_seconds']:.0f} sentences/s)"
    )


if __name__ == "__main__":
    app.run(main)
