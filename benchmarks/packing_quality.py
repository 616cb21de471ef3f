r"""Packed vs unpacked pre-training at equal real (non-padding) tokens seen: MLM / NSP accuracy
on the same held-out unpacked records.

    python -m benchmarks.packing_quality                          # default job, 400 steps
    python -m benchmarks.packing_quality --num_train_steps=1500   # the whole default job
    python -m benchmarks.packing_quality --corpus=bbc_news --seq_length=512 \
        --global_batch_size=16 --num_train_steps=300   # slow on 2 busy cores: ~1 h+

Both runs are `python -m apps.pretrain` subprocesses (the real job: tf.data, dynamic masking,
the trainer, checkpoints) on the same records, vocab, model and schedule:
  kjv       the default job itself (demo_data/pretraining_default.py): unpacked is
            `apps.pretrain --model_dir=W/unpacked`, packed the same plus `--pack`;
  bbc_news  BBC News articles (realistic document lengths; the first 2,000 train, the
            remaining 225 are held out), unmasked records at --seq_length, the default job's
            tiny model and optimizer settings, the MiniLM uncased vocab.
`--global_batch_size` counts rows, and a packed row holds more real tokens than an unpacked
one, so the packed run trains fewer steps: round(N / F), F = real tokens per packed row over
real tokens per sequence, computed by packing the training records' lengths with the pipeline's
algorithm and buffer (best-fit decreasing over 1,024 sequences). Both models are then evaluated
by the same `apps.pretrain --mode=eval` on the held-out records, unpacked. The runs are not
interleaved: read the speed ratio from `apps.benchmark --cases=packing`, the quality here.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS


def _define_flags():
    """Flags of this script (defined when it runs, so that importing `packing_factor` next to
    apps.benchmark, which has its own --seq_length, does not clash)."""
    flags.DEFINE_enum(
        "corpus",
        "kjv",
        ["kjv", "bbc_news"],
        "kjv: the default job; bbc_news: BBC News articles (realistic lengths).",
    )
    flags.DEFINE_string("work_dir", None, "Where the two model dirs go (default: a new temp dir).")
    flags.DEFINE_integer(
        "num_train_steps",
        400,
        "Steps of the unpacked run (the default job "
        "trains 1500); the packed run: the same real tokens in fewer steps.",
    )
    flags.DEFINE_integer("seq_length", 512, "Sequence length of --corpus=bbc_news.")
    flags.DEFINE_integer("global_batch_size", 32, "Rows per step (both runs).")
    flags.DEFINE_integer("max_sequences_per_row", 3, "Sequences per packed row at most.")
    flags.DEFINE_integer("pack_buffer_size", 1024, "Sequences packed together in tf.data.")
    flags.DEFINE_string("output_json", None, "Write the results here as JSON.")


# The default job's model and optimizer (demo_data/pretraining_default.py), for bbc_news.
_TINY = [
    "--config=tiny",
    "--num_heads=4",
    "--hidden_dropout=0",
    "--attention_dropout=0",
    "--learning_rate=2e-3",
    "--optimizer=adamw",
    "--dynamic_masking",
    "--checkpoint_every_steps=1000000",
    "--log_every_steps=50",
]
_BBC_TRAIN_DOCS = 2000
_WARMUP_STEPS = 50  # the default job's


def _pretrain(args, log_path):
    """Runs apps.pretrain; returns (wall seconds, load average before, after)."""
    load = os.getloadavg()[0]
    start = time.time()
    with open(log_path, "w") as log:
        rc = subprocess.call(
            [sys.executable, "-m", "apps.pretrain"] + args, stdout=log, stderr=subprocess.STDOUT
        )
    if rc:
        raise SystemExit(
            f"packing_quality: apps.pretrain {' '.join(args)} failed (rc {rc}); see {log_path}"
        )
    return time.time() - start, load, os.getloadavg()[0]


def _bbc_data(data_dir, seq_length):
    """Unmasked train / held-out records of BBC News at `seq_length`; returns the files."""
    from benchmarks.packing_case import write_corpus
    from demo_data import assets

    os.makedirs(data_dir, exist_ok=True)
    text = os.path.join(data_dir, "bbc.txt")
    write_corpus("bbc_news", text, 10000)
    with open(text, encoding="utf-8") as f:
        docs = [d for d in f.read().split("\n\n") if d.strip()]
    parts = {"train": docs[:_BBC_TRAIN_DOCS], "eval": docs[_BBC_TRAIN_DOCS:]}
    vocab = os.path.join(assets.minilm_dir(), "vocab.txt")
    for name, part in parts.items():
        path = os.path.join(data_dir, f"{name}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(part) + "\n")
        subprocess.check_call(
            [
                sys.executable,
                "-m",
                "apps.create_pretraining_data",
                f"--input_files={path}",
                f"--vocab_file={vocab}",
                f"--output_prefix={os.path.join(data_dir, name)}",
                f"--max_seq_length={seq_length}",
                "--max_predictions_per_seq=0",
                "--input_format=prose",
                "--dupe_factor=1" if name == "eval" else "--dupe_factor=2",
                "--num_shards=1",
                "--overwrite",
            ],
            stdout=subprocess.DEVNULL,
        )
    return (
        vocab,
        os.path.join(data_dir, "train-*.tfrecord"),
        os.path.join(data_dir, "eval-*.tfrecord"),
    )


def packing_factor(pattern, seq_length, max_sequences_per_row, buffer_size):
    """(real tokens per sequence, real tokens per packed row) of the records under `pattern`,
    packed in consecutive buffers as the tf.data pipeline does (masks are drawn there, so the
    prediction slots are the default's, which any row fits)."""
    import numpy as np
    import tensorflow as tf

    from bert_tf.data.pretraining import packing

    spec = {"input_mask": tf.io.FixedLenFeature([seq_length], tf.int64)}
    ds = tf.data.TFRecordDataset(sorted(glob.glob(pattern))).batch(buffer_size)
    ds = ds.map(lambda r: tf.io.parse_example(r, spec))
    config = packing.PackingConfig(seq_length, max_sequences_per_row, seq_length)
    tokens = sequences = rows = 0
    for batch in ds.as_numpy_iterator():
        lengths = batch["input_mask"].sum(axis=1)
        rows += len(packing.best_fit_decreasing(lengths, np.zeros_like(lengths), config))
        tokens, sequences = tokens + int(lengths.sum()), sequences + lengths.size
    return tokens / sequences, tokens / rows


def _job_args(corpus, work, seq_length):
    """(extra apps.pretrain flags, training records pattern, sequence length)."""
    if corpus == "kjv":
        from demo_data import pretraining_default as default

        data = default.prepare_data(os.path.join(work, "kjv_data"), progress=print)
        return [], data["input_files"], default.SEQ_LENGTH, data
    vocab, train, held_out = _bbc_data(os.path.join(work, "bbc_data"), seq_length)
    args = _TINY + [
        f"--vocab_file={vocab}",
        f"--input_files={train}",
        f"--eval_files={held_out}",
        f"--max_seq_length={seq_length}",
        f"--max_predictions_per_seq={round(0.15 * seq_length)}",
        f"--max_position_embeddings={seq_length}",
    ]
    return args, train, seq_length, None


def main(argv):
    del argv
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="packing_quality_")
    os.makedirs(work, exist_ok=True)
    base, train_files, t, kjv_data = _job_args(FLAGS.corpus, work, FLAGS.seq_length)
    per_seq, per_row = packing_factor(
        train_files, t, FLAGS.max_sequences_per_row, FLAGS.pack_buffer_size
    )
    n, b = FLAGS.num_train_steps, FLAGS.global_batch_size
    steps = {"unpacked": n, "packed": max(1, round(n * per_seq / per_row))}
    tokens = {"unpacked": n * b * per_seq, "packed": steps["packed"] * b * per_row}
    warmup = min(_WARMUP_STEPS, steps["packed"])  # the same warm-up for both
    results = {}
    for name in ("unpacked", "packed"):
        model_dir = os.path.join(work, name)
        if kjv_data:  # the default job's data steps are skipped when their outputs exist
            shutil.copytree(
                os.path.dirname(kjv_data["vocab_file"]),
                os.path.join(model_dir, "data"),
                dirs_exist_ok=True,
            )
        args = base + [
            f"--model_dir={model_dir}",
            f"--num_train_steps={steps[name]}",
            f"--global_batch_size={b}",
            f"--num_warmup_steps={warmup}",
        ]
        if name == "packed":
            args += ["--pack", f"--max_sequences_per_row={FLAGS.max_sequences_per_row}"]
        wall, load_before, load_after = _pretrain(args, os.path.join(work, f"{name}.log"))
        # the same evaluation for both: held-out records, unpacked
        _pretrain(
            ["--mode=eval", f"--model_dir={model_dir}"], os.path.join(work, f"{name}_eval.log")
        )
        with open(os.path.join(model_dir, "eval_results.json")) as f:
            results[name] = dict(
                json.load(f),
                steps=steps[name],
                real_tokens=tokens[name],
                wall_seconds=wall,
                load_average=[load_before, load_after],
            )
        print(f"{name}: {json.dumps(results[name], sort_keys=True)}", flush=True)
    print(
        f"\npacking quality, {FLAGS.corpus} at seq {t}, batch {b} rows; real tokens per "
        f"sequence {per_seq:.1f}, per packed row {per_row:.1f} (x{per_row / per_seq:.3f})"
    )
    print(
        f"{'run':9s} {'steps':>6s} {'real tokens':>12s} {'MLM acc':>8s} {'NSP acc':>8s} "
        f"{'MLM loss':>9s} {'wall s':>7s} {'load':>9s}"
    )
    for name, r in results.items():
        print(
            f"{name:9s} {r['steps']:6d} {r['real_tokens']:12.0f} "
            f"{r['masked_lm_accuracy']:8.4f} {r['next_sentence_accuracy']:8.4f} "
            f"{r.get('masked_lm_loss', float('nan')):9.4f} {r['wall_seconds']:7.0f} "
            f"{r['load_average'][0]:4.1f}-{r['load_average'][1]:<4.1f}"
        )
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(
                {
                    "corpus": FLAGS.corpus,
                    "seq_length": t,
                    "batch_rows": b,
                    "real_tokens_per_sequence": per_seq,
                    "real_tokens_per_row": per_row,
                    "results": results,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    _define_flags()
    app.run(main)
