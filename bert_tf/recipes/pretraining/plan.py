"""A pre-training run's inputs, checked and resolved before anything is written.

    config = resolve_recorded(config)   # unset lengths/masking (and --mode=eval's eval
                                        # files) from the model dir's config.json
    plan = plan_run(config)    # a PretrainingPlan: encoder config, vocab, casing, init model
    check_batch(config, strategy)
    check_records(config, plan, config.input_files, "input_files")

Checked here: the vocab (special tokens), the encoder config (vocab size, positions >= seq
length), the record files (first record of each file, metadata: seq length, predictions,
vocab), the batch vs the number of replicas, an existing model dir's recorded config and vocab
(a conflict is an error, never an overwrite), and the --init_checkpoint's shapes. Every
problem raises `PretrainingJobError` with a one-line message. `dataset_fn` builds the run's
tf.data pipelines (bert_tf/data/pretraining/dataset.py).
"""

import dataclasses
import os

from bert_tf import model_dir as md
from bert_tf.checkpoints.loader import load_pretrainer
from bert_tf.checkpoints.sources import CheckpointError
from bert_tf.config import BertConfig
from bert_tf.data.pretraining import packing
from bert_tf.data.pretraining.create import PretrainingDataError
from bert_tf.data.pretraining.dataset import pretraining_dataset
from bert_tf.recipes.pretrain_config import MODES, PretrainConfig, PretrainingJobError
from bert_tf.tasks.pretraining import PretrainingTask
from bert_tf.text import vocab as vocab_lib


def fail(message):
    raise PretrainingJobError(message)


def first_line(error):
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
                fail(f"--config {value}: no such file")
            # BertConfig fields, or a bert-tf / Google / Hugging Face config.json
            values = dict(md.encoder_values_from_json(value))
        else:
            fail(
                f"--config {value!r}: not a preset ({', '.join(BertConfig.preset_names())}) "
                "and not a JSON file"
            )
        values.update(overrides)
        return BertConfig.from_dict(values)
    except PretrainingJobError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as e:
        fail(f"--config {value}: {first_line(e)}")


def _same_file_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def _comparable(config):
    """Encoder fields that decide the weights' shapes and maths (not dropout rates)."""
    values = config.to_dict()
    for key in ("hidden_dropout", "attention_dropout", "initializer_range", "fused_kernels"):
        values.pop(key, None)
    return values


def _config_diff(a, b):
    da, db = _comparable(a), _comparable(b)
    return [f"{k}={da[k]} vs {db[k]}" for k in sorted(da) if da[k] != db.get(k)]


class PretrainingPlan:
    """The checked, resolved inputs of one run."""

    def __init__(self):
        self.encoder_config = None  # BertConfig
        self.vocab_file = None
        self.vocab = None
        self.lower_case = None
        self.existing = None  # the model dir's config.json values, if any
        self.init_model = None  # a loaded BertPretrainer for --init_checkpoint


def _load_vocab(path):
    try:
        return vocab_lib.load_vocab(path)
    except vocab_lib.VocabError as e:
        fail(str(e))


def _init_checkpoint_model(path):
    try:
        return load_pretrainer(path)
    except (CheckpointError, OSError, ValueError, KeyError) as e:
        fail(f"--init_checkpoint {path}: {first_line(e)}")


def _init_checkpoint_vocab(path):
    candidates = (
        [os.path.join(path, md.VOCAB_FILE)]
        if os.path.isdir(path)
        else [os.path.join(os.path.dirname(path), md.VOCAB_FILE)]
    )
    return next((c for c in candidates if os.path.isfile(c)), None)


def plan_run(config):
    """Checks the settings and resolves config, vocab and casing; writes nothing."""
    plan = PretrainingPlan()
    if config.mode not in MODES:
        fail(f"--mode {config.mode!r}: expected one of {', '.join(MODES)}")
    if not config.model_dir:
        fail("--model_dir is required")
    if config.whole_word_masking and not config.dynamic_masking:
        fail(
            "--whole_word_masking applies to --dynamic_masking (stored masks are whole-word "
            "if create_pretraining_data wrote them with --whole_word_masking)"
        )
    d = md.ModelDir(config.model_dir)
    plan.existing = _read_existing(config, d)
    if config.mode == "eval":
        if plan.existing is None:
            fail(
                f"--mode=eval: {config.model_dir} is not a bert-tf model directory (no "
                f"{md.CONFIG_FILE})"
            )
        plan.encoder_config = BertConfig.from_dict(plan.existing["encoder"])
        plan.vocab_file = d.vocab_path
        plan.vocab = _load_vocab(plan.vocab_file)
        plan.lower_case = plan.existing["preprocessing"].get("lower_case")
        return plan
    if config.init_checkpoint:
        plan.init_model = _init_checkpoint_model(config.init_checkpoint)
    _resolve_vocab(config, plan, d)
    _resolve_encoder_config(config, plan)
    if plan.existing is not None:
        _check_against_model_dir(config, plan, d)
    if plan.init_model is not None:  # the init checkpoint must have the run's shapes
        diff = _config_diff(plan.encoder_config, plan.init_model.encoder.config)
        if diff:
            fail(
                f"--init_checkpoint {config.init_checkpoint}: its encoder differs from the "
                f"run's config ({', '.join(diff[:4])}; run vs checkpoint)"
            )
    return plan


def _read_existing(config, d):
    """The model dir's config.json values (None without one); it must be a pre-training run."""
    if not os.path.exists(d.config_path) or (config.overwrite_model_dir and config.mode != "eval"):
        return None  # --overwrite_model_dir: the recorded run is about to be removed
    try:
        existing = d.read_config()
    except (OSError, ValueError) as e:
        fail(f"{d.config_path}: {first_line(e)} (not overwritten; use another --model_dir)")
    if existing["task"].get("type") != PretrainingTask.name:
        fail(
            f"{config.model_dir} holds a {existing['task'].get('type')!r} model, not a "
            "pre-training run; use another --model_dir (or pass it as --init_checkpoint)"
        )
    return existing


def _resolve_vocab(config, plan, d):
    """--vocab_file, else the model dir's, else the init checkpoint's; casing from it."""
    plan.vocab_file = config.vocab_file
    if not plan.vocab_file and plan.existing is not None and os.path.isfile(d.vocab_path):
        plan.vocab_file = d.vocab_path
    if not plan.vocab_file and config.init_checkpoint:
        plan.vocab_file = _init_checkpoint_vocab(config.init_checkpoint)
    if not plan.vocab_file:
        fail("--vocab_file is required (no vocab.txt in --model_dir or --init_checkpoint)")
    plan.vocab = _load_vocab(plan.vocab_file)
    plan.lower_case = (
        vocab_lib.infer_lower_case(plan.vocab)
        if config.lower_case is None
        else bool(config.lower_case)
    )


def _resolve_encoder_config(config, plan):
    """--config, else the model dir's, else the init checkpoint's (with the overrides)."""
    if config.encoder_config is not None:
        overrides = dict(config.config_overrides)
        if (
            isinstance(config.encoder_config, str)
            and config.encoder_config in BertConfig.preset_names()
        ):
            overrides.setdefault("vocab_size", len(plan.vocab))
        plan.encoder_config = _load_config_value(config.encoder_config, overrides)
    elif plan.existing is not None:
        plan.encoder_config = _load_config_value(plan.existing["encoder"], config.config_overrides)
    elif plan.init_model is not None:
        plan.encoder_config = _load_config_value(
            plan.init_model.encoder.config, config.config_overrides
        )
    else:
        fail(
            "--config is required (a preset: "
            f"{', '.join(BertConfig.preset_names())}, or a JSON file) when neither "
            "--model_dir nor --init_checkpoint already has one"
        )
    if plan.encoder_config.vocab_size < len(plan.vocab):
        fail(
            f"encoder vocab_size={plan.encoder_config.vocab_size} is smaller than the vocab "
            f"{plan.vocab_file} ({len(plan.vocab)} tokens)"
        )
    if config.max_seq_length > plan.encoder_config.max_position_embeddings:
        fail(
            f"--max_seq_length={config.max_seq_length} exceeds the encoder's "
            f"max_position_embeddings={plan.encoder_config.max_position_embeddings}"
        )


def _check_against_model_dir(config, plan, d):
    """Conflicts with what the model dir already records: encoder, seq length, vocab."""
    recorded = BertConfig.from_dict(plan.existing["encoder"])
    diff = _config_diff(plan.encoder_config, recorded)
    if diff:
        fail(
            f"{d.config_path}: the model dir was made with another encoder config "
            f"({', '.join(diff[:4])}; flags vs recorded); use a new --model_dir "
            f"(with --init_checkpoint={config.model_dir} to continue from it)"
        )
    pre = plan.existing["preprocessing"]
    if pre.get("seq_length") not in (None, config.max_seq_length):
        fail(
            f"{d.config_path}: the model dir was trained with seq_length="
            f"{pre.get('seq_length')}, not --max_seq_length={config.max_seq_length}; use a "
            f"new --model_dir with --init_checkpoint={config.model_dir} for another phase"
        )
    if (
        os.path.isfile(d.vocab_path)
        and os.path.abspath(d.vocab_path) != os.path.abspath(plan.vocab_file)
        and not _same_file_content(d.vocab_path, plan.vocab_file)
    ):
        fail(f"{d.vocab_path} differs from --vocab_file {plan.vocab_file}; use a new --model_dir")


# ----------------------------------------------------------------------------- data


def dataset_fn(config, plan, files, is_training, record_limits=None):
    """A function of an InputContext returning this pipeline's per-replica batches."""
    ids = vocab_lib.special_token_ids(plan.vocab)
    micro_batch = config.global_batch_size // config.grad_accum_steps
    pack = _packing_config(config)

    def make(input_context=None):
        return pretraining_dataset(
            files,
            micro_batch,
            config.max_seq_length,
            config.max_predictions_per_seq,
            is_training=is_training,
            seed=config.seed,
            dynamic_masking=config.dynamic_masking,
            whole_word_masking=bool(config.whole_word_masking),
            vocab_size=len(plan.vocab),
            mask_id=ids["mask_id"],
            special_ids=tuple(sorted(set(ids.values()))),
            input_context=input_context,
            vocab_file=plan.vocab_file,
            packing=pack,
            record_limits=record_limits,
        )

    return make


def _packing_config(config):
    """The PackingConfig of --pack (None without it)."""
    if not config.pack:
        return None
    try:
        return packing.check_settings(
            config.max_seq_length,
            config.max_predictions_per_seq,
            config.max_sequences_per_row,
            config.max_predictions_per_row,
        )
    except packing.PackingError as e:
        fail(first_line(e))


def check_records(config, plan, files, what):
    if not files or (isinstance(files, (list, tuple)) and not any(files)):
        fail(f"--{what} is required")
    try:
        dataset_fn(config, plan, files, is_training=False)()
    except PretrainingDataError as e:
        fail(f"--{what}: {first_line(e)}")
    except Exception as e:  # tf.errors from unreadable files
        fail(f"--{what}: {first_line(e)}")


def check_batch(config, strategy):
    if config.global_batch_size <= 0:
        fail(f"--global_batch_size must be positive, got {config.global_batch_size}")
    if config.grad_accum_steps < 1 or config.global_batch_size % config.grad_accum_steps:
        fail(
            f"--global_batch_size={config.global_batch_size} is not divisible by "
            f"--grad_accum_steps={config.grad_accum_steps}"
        )
    micro = config.global_batch_size // config.grad_accum_steps
    replicas = strategy.num_replicas_in_sync
    if micro % replicas:
        fail(
            f"batch {micro} per optimizer micro-step (--global_batch_size="
            f"{config.global_batch_size} / --grad_accum_steps={config.grad_accum_steps}) is not "
            f"divisible by the {replicas} replicas of --strategy={config.strategy}"
        )


# ----------------------------------------------------------------------------- resume


def resolve_recorded(config):
    """Fills unset settings from the model dir's config.json: max_seq_length and
    max_predictions_per_seq (else 128 / 20), dynamic_masking and whole_word_masking (else
    False), and for --mode=eval the eval_files of the recorded run."""
    recorded = {}
    starting_over = config.overwrite_model_dir and config.mode != "eval"
    try:
        values = (
            md.ModelDir(config.model_dir).read_config_if_any()
            if config.model_dir and not starting_over
            else None
        )
        if values is not None:
            run = PretrainConfig.from_record(
                values.get("training") or {}, model_dir=config.model_dir
            )
            recorded = {
                "max_seq_length": values.get("preprocessing", {}).get("seq_length"),
                "max_predictions_per_seq": values.get("task", {}).get("max_predictions_per_seq"),
                "dynamic_masking": run.dynamic_masking,
                "whole_word_masking": run.whole_word_masking,
                "eval_files": run.eval_files,
            }
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # plan_run reports a broken config.json
    updates = {}
    defaults = [
        ("max_seq_length", 128),
        ("max_predictions_per_seq", 20),
        ("dynamic_masking", False),
        ("whole_word_masking", False),
    ]
    if config.mode == "eval":
        defaults.append(("eval_files", None))
    for name, default in defaults:
        if getattr(config, name) is None:
            value = recorded.get(name)
            updates[name] = default if value is None else value
    return dataclasses.replace(config, **updates) if updates else config
