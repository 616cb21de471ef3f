r"""Parity harness: bert-tf and transformers + PyTorch fine-tuned on the same files with the
same recipe; per epoch and seed the task metric of both, mean and spread, and the speed of
both over the whole job.

    python -m benchmarks.parity --task=tag --init_checkpoint=HF_DIR \
        --train_file=train.conll --eval_file=dev.conll --seeds=0,1,2

--init_checkpoint must be a Hugging Face BERT directory (config.json, model.safetensors,
vocab.txt, tokenizer files): both sides load it (bert-tf: `load_encoder`; transformers:
AutoTokenizer + AutoModelFor<Task>). The recipe defaults are the reference fine-tuning
recipe: AdamW lr 5e-5, weight decay 0.01 (not on biases / LayerNorm), warmup 10% then linear
decay to 0, batch 32, gradient-norm clipping 1.0, 3 epochs, seq 128, float32.

Each side runs in its own process per seed (benchmarks/parity_side.py), so its wall time is
the whole job a user waits for: interpreter start, imports, reading and tokenizing, model
load, tracing / compiles, training and the per-epoch evaluation. Sides alternate order from
seed to seed so load from other processes falls on both alike. Both sides' predictions are
scored by bert-tf's metric code (benchmarks/parity_data.py). The transformers side needs
torch and transformers (optional; `--sides=bert_tf` runs without them).
"""

import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import parity_data, system

SIDES = ("bert_tf", "transformers")
FLAGS = flags.FLAGS
flags.DEFINE_enum("task", None, list(parity_data.MAIN_METRIC), "Fine-tuning task.")
flags.DEFINE_string("init_checkpoint", None, "A Hugging Face BERT directory.")
flags.DEFINE_string("train_file", None, "Training data, in the task's bert-tf format.")
flags.DEFINE_string("eval_file", None, "Evaluation data (scored after every epoch).")
flags.DEFINE_list("seeds", ["0"], "Seeds; each seed is one run of each side.")
flags.DEFINE_list("sides", list(SIDES), f"Which of {SIDES} to run.")
flags.DEFINE_integer("epochs", 3, "Training epochs.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum tokens per sequence.")
flags.DEFINE_float("warmup_ratio", 0.1, "Fraction of the steps with linear warmup.")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not biases/LayerNorm).")
flags.DEFINE_float("clip_norm", 1.0, "Global gradient-norm clipping (0 = off).")
flags.DEFINE_string(
    "precision", "float32", "bert-tf precision (the transformers side runs float32)."
)
flags.DEFINE_enum(
    "long_inputs",
    "truncate",
    ["truncate", "windows"],
    "bert-tf, tag and "
    "single-text classify: train on the first window of a long input, as the "
    "reference truncates (truncate), or on all its windows.",
)
flags.DEFINE_bool(
    "group_by_length",
    False,
    "bert-tf: training batches of similar lengths (faster, not the reference's statistics).",
)
flags.DEFINE_string("text_a_column", "sentence", "classify: first text column.")
flags.DEFINE_string("text_b_column", None, "classify: second text column.")
flags.DEFINE_string("label_column", "label", "classify: label column.")
flags.DEFINE_string("tag_scheme", "iob", "tag: iob or bioes.")
flags.DEFINE_integer(
    "doc_stride",
    128,
    "squad: window stride (bert-tf) / overlap "
    "(transformers), as each library's example defines it.",
)
flags.DEFINE_integer("max_answer_length", 30, "squad: longest answer in tokens.")
flags.DEFINE_integer("n_best_size", 20, "squad: start/end candidates per window.")
flags.DEFINE_string("work_dir", None, "Where the runs go (default: a temporary directory).")
flags.DEFINE_string("output_json", None, "Write the table's data here as JSON.")


def recipe():
    return {
        "epochs": FLAGS.epochs,
        "batch_size": FLAGS.batch_size,
        "learning_rate": FLAGS.learning_rate,
        "max_seq_length": FLAGS.max_seq_length,
        "warmup_ratio": FLAGS.warmup_ratio,
        "weight_decay": FLAGS.weight_decay,
        "clip_norm": FLAGS.clip_norm,
    }


def _bert_tf_spec(seed, model_dir):
    r = recipe()
    finetune = {
        "task": FLAGS.task,
        "init_checkpoint": FLAGS.init_checkpoint,
        "train_file": FLAGS.train_file,
        "eval_file": FLAGS.eval_file,
        "model_dir": model_dir,
        "seed": seed,
        "epochs": r["epochs"],
        "batch_size": r["batch_size"],
        "eval_batch_size": FLAGS.eval_batch_size,
        "learning_rate": r["learning_rate"],
        "max_seq_length": r["max_seq_length"],
        "warmup_proportion": r["warmup_ratio"],
        "weight_decay": r["weight_decay"],
        "clip_norm": r["clip_norm"],
        "precision": FLAGS.precision,
        "group_by_length": FLAGS.group_by_length,
        "overwrite_model_dir": True,
    }
    if FLAGS.task in ("classify", "tag"):
        finetune["long_inputs"] = FLAGS.long_inputs
    if FLAGS.task == "classify":
        finetune.update(
            text_a_column=FLAGS.text_a_column,
            text_b_column=FLAGS.text_b_column,
            label_column=FLAGS.label_column,
        )
    elif FLAGS.task == "tag":
        finetune["tag_scheme"] = FLAGS.tag_scheme
    elif FLAGS.task == "squad":
        finetune.update(
            doc_stride=FLAGS.doc_stride,
            max_answer_length=FLAGS.max_answer_length,
            n_best_size=FLAGS.n_best_size,
        )
    return {"finetune": finetune}


def _transformers_spec(seed, data):
    return dict(
        recipe(),
        task=FLAGS.task,
        model_dir=FLAGS.init_checkpoint,
        seed=seed,
        eval_batch_size=FLAGS.eval_batch_size,
        doc_stride=FLAGS.doc_stride,
        max_answer_length=FLAGS.max_answer_length,
        n_best_size=FLAGS.n_best_size,
        label_names=data.label_names,
        train=data.train,
        eval=data.eval,
    )


def run_side(side, spec, work_dir, name):
    """Runs one side in a fresh process (its stderr kept as work_dir/NAME.log); returns its
    output plus the process' wall and CPU time."""
    spec_path = os.path.join(work_dir, f"{name}.spec.json")
    out_path = os.path.join(work_dir, f"{name}.out.json")
    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    start, cpu_start = time.perf_counter(), _children_cpu()
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.parity_side", side, spec_path, out_path],
        env=env,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    with open(os.path.join(work_dir, f"{name}.log"), "w", encoding="utf-8") as f:
        f.write(result.stderr)
    if result.returncode:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"the {side} side (seed run {name}) failed:\n{tail}")
    with open(out_path, encoding="utf-8") as f:
        out = json.load(f)
    out["wall_seconds"], out["cpu_seconds"] = wall, cpu
    return out


def _children_cpu():
    """User + system CPU seconds of the finished child processes (on a shared machine the
    CPU time of a job varies far less than its wall time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _epoch_metrics(side, out, data):
    """[(epoch, main metric, all numeric results)] of one run."""
    if side == "bert_tf":
        return [(h["epoch"], h.get(data.main_metric), h) for h in out["history"]]
    rows = []
    for e in out["epochs"]:
        results = parity_data.score(data, e["predictions"])
        rows.append(
            (
                e["epoch"],
                results[data.main_metric],
                {k: v for k, v in results.items() if isinstance(v, (int, float))},
            )
        )
    return rows


def _times(out):
    """Seconds of one run: the whole process, the training loops, the evaluations (the rest
    is start-up: imports, reading, tokenizing, model load; tracing counts as training)."""
    if "epochs" in out:
        train = sum(e["train_seconds"] for e in out["epochs"])
        evaluation = sum(e["eval_seconds"] for e in out["epochs"])
    else:
        train, evaluation = out.get("train_seconds") or 0.0, out.get("eval_seconds") or 0.0
    return {
        "wall": out["wall_seconds"],
        "train": train,
        "eval": evaluation,
        "cpu": out["cpu_seconds"],
    }


def _spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs, data, sides, seeds):
    """The JSON the table prints: per side and seed the epochs' metric, final mean/spread,
    and speed (examples = training examples x epochs over the whole job's wall time)."""
    n_examples = len(data.train) * FLAGS.epochs
    out = {
        "task": FLAGS.task,
        "main_metric": data.main_metric,
        "recipe": recipe(),
        "train_examples": len(data.train),
        "eval_examples": len(data.eval),
        "seeds": seeds,
        "sides": {},
    }
    for side in sides:
        per_seed, times = {}, []
        for seed in seeds:
            o = runs[(side, seed)]
            per_seed[str(seed)] = [
                {"epoch": e, "metric": m, "results": r} for e, m, r in _epoch_metrics(side, o, data)
            ]
            times.append(_times(o))
        finals = [rows[-1]["metric"] for rows in per_seed.values() if rows]
        mean, std = _spread(finals)
        wall, train, evaluation, cpu = (
            statistics.mean(t[k] for t in times) for k in ("wall", "train", "eval", "cpu")
        )
        out["sides"][side] = {
            "per_seed": per_seed,
            "final_mean": mean,
            "final_std": std,
            "final_min": min(finals) if finals else None,
            "final_max": max(finals) if finals else None,
            "wall_seconds": wall,
            "train_seconds": train,
            "eval_seconds": evaluation,
            "other_seconds": wall - train - evaluation,
            "examples_per_second": n_examples / wall,
            "cpu_seconds": cpu,
            "examples_per_cpu_second": n_examples / cpu,
            "train_loop_examples_per_second": n_examples / train if train else None,
        }
    if len(out["sides"]) == 2:
        a, b = out["sides"]["bert_tf"], out["sides"]["transformers"]
        out["speed_ratio_bert_tf_vs_transformers"] = (
            a["examples_per_second"] / b["examples_per_second"]
        )
        out["cpu_speed_ratio_bert_tf_vs_transformers"] = (
            a["examples_per_cpu_second"] / b["examples_per_cpu_second"]
        )
    return out


def print_table(summary, machine):
    metric = summary["main_metric"]
    print(
        f"task {summary['task']}: {summary['train_examples']} training / "
        f"{summary['eval_examples']} eval examples; recipe {summary['recipe']}"
    )
    sides = list(summary["sides"])
    print(f"{'seed':>4s} {'epoch':>5s} " + " ".join(f"{s + ' ' + metric:>22s}" for s in sides))
    seeds = summary["seeds"]
    for seed in seeds:
        rows = {s: summary["sides"][s]["per_seed"][str(seed)] for s in sides}
        for i in range(max(len(r) for r in rows.values())):
            cells = [
                f"{rows[s][i]['metric']:22.4f}"
                if i < len(rows[s]) and rows[s][i]["metric"] is not None
                else f"{'-':>22s}"
                for s in sides
            ]
            print(f"{seed:>4} {i + 1:>5d} " + " ".join(cells))
    print(
        f"{'side':13s} {'final mean':>10s} {'std':>7s} {'min':>7s} {'max':>7s} "
        f"{'job s':>7s} {'train s':>7s} {'eval s':>6s} {'other s':>7s} {'ex/s job':>8s} "
        f"{'ex/s train':>10s} {'ex/CPU s':>8s}"
    )
    for s in sides:
        r = summary["sides"][s]
        loop = r["train_loop_examples_per_second"]
        print(
            f"{s:13s} {r['final_mean']:10.4f} {r['final_std']:7.4f} {r['final_min']:7.4f} "
            f"{r['final_max']:7.4f} {r['wall_seconds']:7.1f} {r['train_seconds']:7.1f} "
            f"{r['eval_seconds']:6.1f} {r['other_seconds']:7.1f} "
            f"{r['examples_per_second']:8.2f} {'-' if loop is None else f'{loop:.2f}':>10s} "
            f"{r['examples_per_cpu_second']:8.2f}"
        )
    if "speed_ratio_bert_tf_vs_transformers" in summary:
        print(
            f"bert-tf / transformers examples/s over the whole job: "
            f"{summary['speed_ratio_bert_tf_vs_transformers']:.2f}x (per CPU second: "
            f"{summary['cpu_speed_ratio_bert_tf_vs_transformers']:.2f}x)"
        )
    cpu = machine["cpu"]
    print(
        f"machine: {cpu['model'] or 'unknown CPU'} ({', '.join(cpu['flags']) or 'no AVX'}), "
        f"{machine['cpu_count']} cores, load average {machine['load_average_start']} -> "
        f"{machine['load_average_end']}"
    )
    sys.stdout.flush()


def _check_flags():
    for name in ("task", "init_checkpoint", "train_file", "eval_file"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    unknown = [s for s in FLAGS.sides if s not in SIDES]
    if unknown or not FLAGS.sides:
        raise app.UsageError(f"--sides: expected a subset of {SIDES}, got {FLAGS.sides}")
    if "transformers" in FLAGS.sides:
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise app.UsageError(
                f"the transformers side needs {' and '.join(missing)} "
                "(pip install torch transformers), or run --sides=bert_tf"
            )
    try:
        return [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise app.UsageError(f"--seeds: expected integers, got {FLAGS.seeds}") from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    seeds = _check_flags()
    machine = {
        "cpu": system.cpu_info(),
        "cpu_count": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    data = parity_data.examples(
        FLAGS.task,
        FLAGS.train_file,
        FLAGS.eval_file,
        text_a_column=FLAGS.text_a_column,
        text_b_column=FLAGS.text_b_column,
        label_column=FLAGS.label_column,
        tag_scheme=FLAGS.tag_scheme,
    )
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="parity_")
    os.makedirs(work_dir, exist_ok=True)
    runs = {}
    for i, seed in enumerate(seeds):
        for side in FLAGS.sides if i % 2 == 0 else list(reversed(FLAGS.sides)):
            spec = (
                _bert_tf_spec(seed, os.path.join(work_dir, f"bert_tf_seed{seed}"))
                if side == "bert_tf"
                else _transformers_spec(seed, data)
            )
            runs[(side, seed)] = run_side(side, spec, work_dir, f"{side}_seed{seed}")
            print(f"{side} seed {seed}: {runs[(side, seed)]['wall_seconds']:.1f} s", flush=True)
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    summary = summarize(runs, data, FLAGS.sides, seeds)
    summary["machine"] = machine
    print_table(summary, machine)
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
        print(f"wrote {FLAGS.output_json}")


if __name__ == "__main__":
    app.run(main)
