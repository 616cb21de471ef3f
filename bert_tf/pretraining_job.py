"""The BERT pre-training recipe: records in, a complete model directory out.

    settings = PretrainingSettings(model_dir="runs/x", input_files="data/train-*.tfrecord",
                                   eval_files="data/eval-*.tfrecord", vocab_file="vocab.txt",
                                   config="tiny", num_train_steps=1000)
    results = run_pretraining(settings)           # -> eval results dict (or {} for mode=train)

Steps, in order:
  1. check everything that can be checked cheaply BEFORE anything is written: the vocab
     (special tokens), the encoder config (vocab size, positions >= seq length), the record
     files (first record of each file, metadata: seq length, predictions, vocab), the batch
     vs the number of replicas, an existing model dir's recorded config and vocab (a
     conflict is an error, never an overwrite), and the --init_checkpoint's shapes;
  2. write config.json (encoder, preprocessing {vocab_file, lower_case, seq_length},
     task {type: pretraining}, training {settings}) and vocab.txt;
  3. train with the Trainer (checkpoints in <model_dir>/checkpoints: a rerun of the same
     command resumes; TensorBoard in <model_dir>/logs);
  4. save the final weights (model.weights.h5), evaluate on the held-out records and write
     eval_results.json (masked_lm_accuracy, next_sentence_accuracy, losses, step).

Every problem with the inputs raises `PretrainingJobError` with a one-line message. The run
holds <model_dir>/.lock (bert_tf/run_lock.py); reruns on a model dir that holds another run,
and damaged record files, are handled by bert_tf/pretraining_guard.py.
"""

import contextlib
import dataclasses
import json
import logging
import os
import re
import time

from bert_tf import model_dir as md
from bert_tf import pretraining_guard as guard
from bert_tf.config import BertConfig
from bert_tf.errors import BertTfError
from bert_tf.run_lock import RunLock

log = logging.getLogger(__name__)

MODES = ("train_and_eval", "train", "eval")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


class PretrainingJobError(BertTfError, ValueError):
    """Bad input for a pre-training job; the message is one line."""


@dataclasses.dataclass
class PretrainingSettings:
    """Everything a pre-training run needs (the app's flags, one to one)."""

    model_dir: str
    input_files: object = None          # comma-separated globs or a list of globs
    eval_files: object = None
    vocab_file: str = None              # None: the model dir's or the init checkpoint's
    lower_case: bool = None             # None: inferred from the vocab
    config: object = None               # preset name, JSON path, dict or BertConfig
    config_overrides: dict = dataclasses.field(default_factory=dict)
    mode: str = "train_and_eval"
    strategy: str = "default"
    tpu: str = None
    num_gpus: int = None
    global_batch_size: int = 32
    max_seq_length: int = None          # None: the model dir's recorded value, else 128
    max_predictions_per_seq: int = None  # None: the model dir's recorded value, else 20
    num_train_steps: int = 1000
    num_warmup_steps: int = 100
    learning_rate: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    grad_accum_steps: int = 1
    precision: str = "auto"
    xla: bool = False
    init_checkpoint: str = None
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 3
    log_every_steps: int = 100
    eval_every_steps: int = 0           # 0: evaluate only at the end
    eval_steps: int = None              # None: the whole eval set
    dynamic_masking: bool = None        # None: the model dir's recorded value, else False
    whole_word_masking: bool = None     # dynamic masks of whole words; None: recorded/False
    seed: int = 12345
    pack: bool = False                  # pack sequences into rows in tf.data (packing.py)
    max_sequences_per_row: int = 3
    max_predictions_per_row: int = None  # None: packing.default_max_predictions_per_row
    skip_corrupt_records: bool = False  # go on without the rest of a damaged record file
    overwrite_model_dir: bool = False   # start over in a model dir that holds another run

    def training_record(self):
        """The settings as recorded under config.json "training"."""
        values = dataclasses.asdict(self)
        values["config"] = (self.config.to_dict() if isinstance(self.config, BertConfig)
                            else self.config)
        return values


def _fail(message):
    raise PretrainingJobError(message)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ----------------------------------------------------------------------------- config / vocab

def _load_config_value(value, overrides):
    """A preset name, a JSON file, a dict or a BertConfig -> BertConfig (with overrides)."""
    try:
        if isinstance(value, BertConfig):
            values = value.to_dict()
        elif isinstance(value, dict):
            values = dict(value)
        elif value in BertConfig.preset_names():
            values = BertConfig.preset(value).to_dict()
        elif isinstance(value, str) and (value.endswith(".json") or os.path.exists(value)):
            if not os.path.isfile(value):
                _fail(f"--config {value}: no such file")
            values = md.read_json(value)
            if "encoder" in values and values.get("format") == md.FORMAT:
                values = values["encoder"]          # a bert-tf model dir's config.json
            elif "num_hidden_layers" in values:     # Google bert_config.json / HF config.json
                values = BertConfig.from_hf_dict(values).to_dict()
        else:
            _fail(f"--config {value!r}: not a preset ({', '.join(BertConfig.preset_names())}) "
                  "and not a JSON file")
        values.update(overrides)
        return BertConfig.from_dict(values)
    except PretrainingJobError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as e:
        _fail(f"--config {value}: {_first_line(e)}")


def _load_vocab(path):
    from bert_tf.text import vocab as vocab_lib
    try:
        return vocab_lib.load_vocab(path)
    except vocab_lib.VocabError as e:
        _fail(str(e))


def _same_file_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


class _Plan:
    """The checked, resolved inputs of one run."""

    def __init__(self):
        self.config = None        # BertConfig
        self.vocab_file = None
        self.vocab = None
        self.lower_case = None
        self.existing = None      # the model dir's config.json values, if any
        self.init_model = None    # a loaded BertPretrainer for --init_checkpoint


def _init_checkpoint_model(path):
    from bert_tf.checkpoints.loader import load_pretrainer
    from bert_tf.checkpoints.sources import CheckpointError
    try:
        return load_pretrainer(path)
    except (CheckpointError, OSError, ValueError, KeyError) as e:
        _fail(f"--init_checkpoint {path}: {_first_line(e)}")


def _init_checkpoint_vocab(path):
    candidates = [os.path.join(path, md.VOCAB_FILE)] if os.path.isdir(path) else [
        os.path.join(os.path.dirname(path), md.VOCAB_FILE)]
    return next((c for c in candidates if os.path.isfile(c)), None)


def _comparable(config):
    """Encoder fields that decide the weights' shapes and maths (not dropout rates)."""
    values = config.to_dict()
    for key in ("hidden_dropout", "attention_dropout", "initializer_range"):
        values.pop(key, None)
    return values


def _config_diff(a, b):
    da, db = _comparable(a), _comparable(b)
    return [f"{k}={da[k]} vs {db[k]}" for k in sorted(da) if da[k] != db.get(k)]


def plan_run(s):
    """Checks the settings and resolves config, vocab and casing; writes nothing."""
    p = _Plan()
    if s.mode not in MODES:
        _fail(f"--mode {s.mode!r}: expected one of {', '.join(MODES)}")
    if not s.model_dir:
        _fail("--model_dir is required")
    if s.whole_word_masking and not s.dynamic_masking:
        _fail("--whole_word_masking applies to --dynamic_masking (stored masks are whole-word "
              "if create_pretraining_data wrote them with --whole_word_masking)")
    d = md.ModelDir(s.model_dir)
    if os.path.exists(d.config_path):
        try:
            p.existing = d.read_config()
        except (OSError, ValueError) as e:
            _fail(f"{d.config_path}: {_first_line(e)} (not overwritten; use another "
                  "--model_dir)")
        if p.existing["task"].get("type") != "pretraining":
            _fail(f"{s.model_dir} holds a {p.existing['task'].get('type')!r} model, not a "
                  "pre-training run; use another --model_dir (or pass it as --init_checkpoint)")

    if s.mode == "eval":
        if p.existing is None:
            _fail(f"--mode=eval: {s.model_dir} is not a bert-tf model directory (no "
                  f"{md.CONFIG_FILE})")
        p.config = BertConfig.from_dict(p.existing["encoder"])
        p.vocab_file = d.vocab_path
        p.vocab = _load_vocab(p.vocab_file)
        p.lower_case = p.existing["preprocessing"].get("lower_case")
        return p

    # ---- vocab
    if s.init_checkpoint:
        p.init_model = _init_checkpoint_model(s.init_checkpoint)
    p.vocab_file = s.vocab_file
    if not p.vocab_file and p.existing is not None and os.path.isfile(d.vocab_path):
        p.vocab_file = d.vocab_path
    if not p.vocab_file and s.init_checkpoint:
        p.vocab_file = _init_checkpoint_vocab(s.init_checkpoint)
    if not p.vocab_file:
        _fail("--vocab_file is required (no vocab.txt in --model_dir or --init_checkpoint)")
    p.vocab = _load_vocab(p.vocab_file)
    from bert_tf.text import vocab as vocab_lib
    p.lower_case = (vocab_lib.infer_lower_case(p.vocab) if s.lower_case is None
                    else bool(s.lower_case))

    # ---- encoder config: --config, else the model dir's, else the init checkpoint's
    if s.config is not None:
        overrides = dict(s.config_overrides)
        if isinstance(s.config, str) and s.config in BertConfig.preset_names():
            overrides.setdefault("vocab_size", len(p.vocab))
        p.config = _load_config_value(s.config, overrides)
    elif p.existing is not None:
        p.config = _load_config_value(p.existing["encoder"], s.config_overrides)
    elif p.init_model is not None:
        p.config = _load_config_value(p.init_model.encoder.config, s.config_overrides)
    else:
        _fail("--config is required (a preset: "
              f"{', '.join(BertConfig.preset_names())}, or a JSON file) when neither "
              "--model_dir nor --init_checkpoint already has one")
    if p.config.vocab_size < len(p.vocab):
        _fail(f"encoder vocab_size={p.config.vocab_size} is smaller than the vocab "
              f"{p.vocab_file} ({len(p.vocab)} tokens)")
    if s.max_seq_length > p.config.max_position_embeddings:
        _fail(f"--max_seq_length={s.max_seq_length} exceeds the encoder's "
              f"max_position_embeddings={p.config.max_position_embeddings}")

    # ---- conflicts with what the model dir already records
    if p.existing is not None:
        recorded = BertConfig.from_dict(p.existing["encoder"])
        diff = _config_diff(p.config, recorded)
        if diff:
            _fail(f"{d.config_path}: the model dir was made with another encoder config "
                  f"({', '.join(diff[:4])}; flags vs recorded); use a new --model_dir "
                  f"(with --init_checkpoint={s.model_dir} to continue from it)")
        pre = p.existing["preprocessing"]
        if pre.get("seq_length") not in (None, s.max_seq_length):
            _fail(f"{d.config_path}: the model dir was trained with seq_length="
                  f"{pre.get('seq_length')}, not --max_seq_length={s.max_seq_length}; use a "
                  f"new --model_dir with --init_checkpoint={s.model_dir} for another phase")
        if (os.path.isfile(d.vocab_path) and os.path.abspath(d.vocab_path)
                != os.path.abspath(p.vocab_file)
                and not _same_file_content(d.vocab_path, p.vocab_file)):
            _fail(f"{d.vocab_path} differs from --vocab_file {p.vocab_file}; use a new "
                  "--model_dir")

    # ---- init checkpoint must have our shapes
    if p.init_model is not None:
        diff = _config_diff(p.config, p.init_model.encoder.config)
        if diff:
            _fail(f"--init_checkpoint {s.init_checkpoint}: its encoder differs from the run's "
                  f"config ({', '.join(diff[:4])}; run vs checkpoint)")
    return p


# ----------------------------------------------------------------------------- data

def _dataset_fn(s, p, files, is_training, record_limits=None):
    """A function of an InputContext returning this pipeline's per-replica batches."""
    from bert_tf.data.pretraining_dataset import pretraining_dataset
    from bert_tf.text import vocab as vocab_lib
    ids = vocab_lib.special_token_ids(p.vocab)
    micro_batch = s.global_batch_size // s.grad_accum_steps
    pack = _packing_config(s)

    def make(input_context=None):
        return pretraining_dataset(
            files, micro_batch, s.max_seq_length, s.max_predictions_per_seq,
            is_training=is_training, seed=s.seed, dynamic_masking=s.dynamic_masking,
            whole_word_masking=bool(s.whole_word_masking),
            vocab_size=len(p.vocab), mask_id=ids["mask_id"],
            special_ids=tuple(sorted(set(ids.values()))), input_context=input_context,
            vocab_file=p.vocab_file, packing=pack, record_limits=record_limits)
    return make


def _packing_config(s):
    """The PackingConfig of --pack (None without it)."""
    if not s.pack:
        return None
    from bert_tf.data import packing
    per_row = s.max_predictions_per_row or packing.default_max_predictions_per_row(
        s.max_seq_length, s.max_predictions_per_seq, s.max_sequences_per_row)
    config = packing.PackingConfig(s.max_seq_length, s.max_sequences_per_row, per_row)
    try:
        config.validate()
    except packing.PackingError as e:
        _fail(f"--{_first_line(e)}")
    return config


def _check_records(s, p, files, what):
    from bert_tf.data.pretraining_data import PretrainingDataError
    if not files or (isinstance(files, (list, tuple)) and not any(files)):
        _fail(f"--{what} is required")
    try:
        _dataset_fn(s, p, files, is_training=False)()
    except PretrainingDataError as e:
        _fail(f"--{what}: {_first_line(e)}")
    except Exception as e:  # tf.errors from unreadable files
        _fail(f"--{what}: {_first_line(e)}")


def _check_batch(s, strategy):
    if s.global_batch_size <= 0:
        _fail(f"--global_batch_size must be positive, got {s.global_batch_size}")
    if s.grad_accum_steps < 1 or s.global_batch_size % s.grad_accum_steps:
        _fail(f"--global_batch_size={s.global_batch_size} is not divisible by "
              f"--grad_accum_steps={s.grad_accum_steps}")
    micro = s.global_batch_size // s.grad_accum_steps
    replicas = strategy.num_replicas_in_sync
    if micro % replicas:
        _fail(f"batch {micro} per optimizer micro-step (--global_batch_size="
              f"{s.global_batch_size} / --grad_accum_steps={s.grad_accum_steps}) is not "
              f"divisible by the {replicas} replicas of --strategy={s.strategy}")


# ----------------------------------------------------------------------------- model dir

def write_model_dir(s, p, training=None):
    """config.json + vocab.txt, before any training."""
    d = md.ModelDir(s.model_dir)
    os.makedirs(s.model_dir, exist_ok=True)
    d.copy_vocab(p.vocab_file)
    d.write_config(p.config,
                   {"vocab_file": md.VOCAB_FILE, "lower_case": bool(p.lower_case),
                    "seq_length": s.max_seq_length},
                   {"type": "pretraining",
                    "max_predictions_per_seq": s.max_predictions_per_seq},
                   training=training or s.training_record())


def _latest_step(checkpoint_dir):
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) \
        else None
    m = re.search(r"ckpt-(\d+)$", latest or "")
    return int(m.group(1)) if m else 0


# ----------------------------------------------------------------------------- run

def _setup_runtime(s):
    import tensorflow as tf

    from bert_tf.training import distribute
    tf.config.optimizer.set_jit(bool(s.xla))
    try:
        strategy = distribute.create_strategy(s.strategy, tpu_address=s.tpu,
                                              num_gpus=s.num_gpus)
    except (ValueError, RuntimeError) as e:
        _fail(f"--strategy={s.strategy}: {_first_line(e)}")
    if s.precision not in PRECISIONS:
        _fail(f"--precision {s.precision!r}: expected one of {', '.join(PRECISIONS)}")
    precision = distribute.default_precision() if s.precision == "auto" else s.precision
    distribute.set_precision(precision)
    return strategy, precision


def _copy_weights(source, target, what):
    sw, tw = source.weights, target.weights
    if len(sw) != len(tw):
        _fail(f"{what}: {len(sw)} weights, the model has {len(tw)}")
    for a, b in zip(sw, tw):
        if tuple(a.shape) != tuple(b.shape):
            _fail(f"{what}: weight {a.path} has shape {tuple(a.shape)}, the model's {b.path} "
                  f"{tuple(b.shape)}")
    for a, b in zip(sw, tw):
        b.assign(a.value if hasattr(a, "value") else a)


def _resolve_recorded(s):
    """Fills unset settings from the model dir's config.json: max_seq_length and
    max_predictions_per_seq (else 128 / 20), dynamic_masking and whole_word_masking (else
    False), and for
    --mode=eval the eval_files and global_batch_size of the recorded run."""
    recorded = {}
    path = md.ModelDir(s.model_dir).config_path if s.model_dir else None
    if path and os.path.isfile(path):
        try:
            values = md.read_json(path)
            training = values.get("training") or {}
            recorded = {"max_seq_length": values.get("preprocessing", {}).get("seq_length"),
                        "max_predictions_per_seq":
                            values.get("task", {}).get("max_predictions_per_seq"),
                        "dynamic_masking": training.get("dynamic_masking"),
                        "whole_word_masking": training.get("whole_word_masking"),
                        "eval_files": training.get("eval_files")}
        except (OSError, ValueError, AttributeError):
            pass  # plan_run reports a broken config.json
    updates = {}
    defaults = [("max_seq_length", 128), ("max_predictions_per_seq", 20),
                ("dynamic_masking", False), ("whole_word_masking", False)]
    if s.mode == "eval":
        defaults.append(("eval_files", None))
    for name, default in defaults:
        if getattr(s, name) is None:
            value = recorded.get(name)
            updates[name] = default if value is None else value
    return dataclasses.replace(s, **updates) if updates else s


def run_pretraining(s, progress=print):
    """Runs one pre-training job (see the module doc). Returns the eval results dict
    ({} for mode=train). Raises PretrainingJobError on bad input, before writing anything.

    The global Keras dtype policy and XLA setting are set for the run and restored after."""
    import keras
    import tensorflow as tf
    policy = keras.mixed_precision.global_policy()
    jit = tf.config.optimizer.get_jit()
    try:
        return _run(s, progress)
    finally:
        keras.mixed_precision.set_global_policy(policy)
        tf.config.optimizer.set_jit(jit)


def _run(s, progress):
    start = time.time()
    strategy, precision = _setup_runtime(s)
    from bert_tf.training import distribute
    lock = contextlib.nullcontext()
    if s.model_dir and distribute.is_chief(strategy):
        lock = RunLock(s.model_dir, log=lambda line: progress("[pretrain] " + line))
    with lock:
        if s.overwrite_model_dir and s.mode != "eval":
            guard.overwrite(s, progress)
        return _run_locked(s, progress, strategy, precision, start)


def _run_locked(s, progress, strategy, precision, start):
    s = _resolve_recorded(s)
    p = plan_run(s)
    if s.mode != "eval":
        _check_batch(s, strategy)
        _check_records(s, p, s.input_files, "input_files")
    if s.mode != "train":
        if not s.eval_files:
            _fail(f"--mode={s.mode} needs --eval_files (held-out pre-training records); "
                  "or use --mode=train")
        _check_records(s, p, s.eval_files, "eval_files")

    import keras

    from bert_tf.models import BertEncoder, BertPretrainer
    from bert_tf.training import optimization
    from bert_tf.training.pretraining_objective import PretrainingObjective
    from bert_tf.training.trainer import CheckpointError, Trainer

    d = md.ModelDir(s.model_dir)
    keras.utils.set_random_seed(s.seed)
    if s.mode == "eval":
        return _evaluate_only(s, p, strategy, d, progress)

    try:
        optimization.create_optimizer(   # checks the optimizer settings before writing
            s.optimizer, learning_rate=s.learning_rate, num_train_steps=s.num_train_steps,
            num_warmup_steps=s.num_warmup_steps)
    except ValueError as e:
        _fail(_first_line(e))
    from bert_tf.training import distribute
    chief = distribute.is_chief(strategy)   # multi-worker: only the chief writes the model dir

    def build_model():
        return BertPretrainer(BertEncoder(p.config))

    def build_optimizer():
        return optimization.create_optimizer(
            s.optimizer, learning_rate=s.learning_rate, num_train_steps=s.num_train_steps,
            num_warmup_steps=s.num_warmup_steps, weight_decay=s.weight_decay,
            clip_norm=s.clip_norm or None)

    def init_fn(model):
        if p.init_model is not None:
            _copy_weights(p.init_model, model, f"--init_checkpoint {s.init_checkpoint}")
            progress(f"[pretrain] initialized from {s.init_checkpoint}")

    try:
        trainer = Trainer(
            build_model, PretrainingObjective(), build_optimizer, strategy=strategy,
            checkpoint_dir=d.checkpoint_dir, log_dir=d.log_dir,
            checkpoint_every_steps=s.checkpoint_every_steps,
            keep_checkpoints=s.keep_checkpoints, log_every_steps=s.log_every_steps,
            steps_per_loop=s.log_every_steps, grad_accum_steps=s.grad_accum_steps,
            progress_fn=lambda line: progress("[pretrain] " + line), init_fn=init_fn)
    except CheckpointError as e:
        _fail(_first_line(e))
    p.init_model = None
    start_step = trainer.current_step
    from bert_tf.data.pretraining_dataset import expand_file_patterns
    fingerprints = guard.input_fingerprints(s, expand_file_patterns)
    done = guard.check_rerun(s, fingerprints, start_step, progress)
    if done is not None:
        return done
    # Written only now: a checkpoint that does not fit (CheckpointError above) or another
    # run's model dir (RunMismatchError) leaves the directory untouched.
    if chief:
        write_model_dir(s, p, guard.training_record(s, fingerprints))
    progress(f"[pretrain] model dir {s.model_dir}: encoder L{p.config.num_layers}/"
             f"H{p.config.hidden_size}/A{p.config.num_heads}, vocab {len(p.vocab)}, "
             f"seq {s.max_seq_length}, batch {s.global_batch_size}, precision {precision}, "
             f"{strategy.num_replicas_in_sync} replica(s)")

    eval_fn = _dataset_fn(s, p, s.eval_files, is_training=False) if s.eval_files else None
    train_start = time.time()
    last = guard.train_guarding_records(
        trainer, lambda limits: _dataset_fn(s, p, s.input_files, True, limits),
        expand_file_patterns, s, progress, write=chief,
        eval_dataset=eval_fn if s.eval_every_steps else None,
        eval_every_steps=s.eval_every_steps or None, eval_steps=s.eval_steps)
    train_seconds = time.time() - train_start
    steps_done = trainer.current_step - start_step
    if chief:
        d.save_weights(trainer.model)
    throughput = (steps_done * s.global_batch_size / train_seconds
                  if steps_done and train_seconds > 0 else None)
    progress(f"[pretrain] trained steps {start_step}->{trainer.current_step} in "
             f"{train_seconds:.0f} s"
             + (f" ({throughput:.1f} examples/s incl. tracing)" if throughput else "")
             + f"; weights -> {d.weights_path}")
    if s.mode == "train":
        return {}
    progress(f"[pretrain] evaluating on {s.eval_files}")
    results = guard.evaluate_guarding_records(trainer, eval_fn, s, expand_file_patterns,
                                              s.eval_steps)
    results = _finish_results(results, trainer.current_step, s)
    results["train_examples_per_second"] = throughput
    if last:
        results["train_last_loss"] = last.get("loss")
        results["train_examples_per_second_last_window"] = last.get("examples_per_second")
    results["wall_seconds"] = round(time.time() - start, 1)
    if chief:
        d.write_eval_results(results)
    progress("[pretrain] eval: " + _fmt(results) + f" -> {d.eval_results_path}")
    return results


def _finish_results(results, step, s):
    out = {"masked_lm_accuracy": results["masked_lm_accuracy"],
           "next_sentence_accuracy": results["next_sentence_accuracy"],
           "masked_lm_loss": results["masked_lm_loss"],
           "next_sentence_loss": results["next_sentence_loss"],
           "loss": results["loss"], "step": int(step),
           "eval_files": s.eval_files if isinstance(s.eval_files, str)
           else ",".join(s.eval_files)}
    return out


def _fmt(results):
    keys = ("masked_lm_accuracy", "next_sentence_accuracy", "masked_lm_loss",
            "next_sentence_loss", "step")
    return " ".join(f"{k}={results[k]:.4f}" if isinstance(results[k], float)
                    else f"{k}={results[k]}" for k in keys)


def _evaluate_only(s, p, strategy, d, progress):
    """--mode=eval: the model dir's final weights (or latest checkpoint) on the eval files."""
    import tempfile

    from bert_tf.checkpoints.loader import load_task_model
    from bert_tf.checkpoints.sources import CheckpointError
    from bert_tf.training import optimization
    from bert_tf.training.pretraining_objective import PretrainingObjective
    from bert_tf.training.trainer import Trainer

    pre = p.existing["preprocessing"]
    if pre.get("seq_length") not in (None, s.max_seq_length):
        log.info("evaluating at --max_seq_length=%d (trained at %s)", s.max_seq_length,
                 pre.get("seq_length"))
    with strategy.scope():
        try:
            model = load_task_model(s.model_dir)
        except (CheckpointError, OSError, ValueError) as e:
            _fail(_first_line(e))
    step = _latest_step(d.checkpoint_dir)
    with tempfile.TemporaryDirectory() as empty:
        trainer = Trainer(model, PretrainingObjective(),
                          lambda: optimization.create_optimizer("adamw", 1e-4, 1),
                          strategy=strategy, checkpoint_dir=empty, log_dir=d.log_dir,
                          progress_fn=lambda line: progress("[pretrain] " + line))
        trainer.step.assign(step)
        progress(f"[pretrain] evaluating {s.model_dir} (step {step}) on {s.eval_files}")
        from bert_tf.data.pretraining_dataset import expand_file_patterns
        results = guard.evaluate_guarding_records(
            trainer, _dataset_fn(s, p, s.eval_files, is_training=False), s,
            expand_file_patterns, s.eval_steps)
    results = _finish_results(results, step, s)
    d.write_eval_results(results)
    progress("[pretrain] eval: " + _fmt(results) + f" -> {d.eval_results_path}")
    return results


def read_eval_results(model_dir):
    with open(md.ModelDir(model_dir).eval_results_path) as f:
        return json.load(f)
