"""What every fine-tuning task provides to `bert_tf.finetune`, and shared helpers."""

import json

import numpy as np
import tensorflow as tf

from bert_tf.atomic_io import atomic_write_text
from bert_tf.data.batching import batch_order, make_dataset
from bert_tf.tasks.settings import TaskSettings


class Task:
    """Subclasses set `main_metric` and `settings_class` (the task's own settings dataclass,
    bert_tf/tasks/<name>/config.py) and implement the methods below; `@register_task` sets
    `name`.

    Life cycle: `load()` reads and featurizes the data once (train_features, eval_features);
    `task_info()` is written to config.json "task"; `build_model(encoder)` (the model a
    config.json "task" dict describes: `model_from_info`); `make_dataset`; `objective`
    (compute_loss/metric_names for the Trainer); after each epoch `evaluate(outputs)` with the
    model outputs per eval feature and `write_predictions(model_dir, outputs)` for the best.
    """

    name: str | None = None
    main_metric: str | None = None
    settings_class = TaskSettings
    prediction_files: tuple[
        str, ...
    ] = ()  # the files `write_predictions` writes into the model dir
    # Short texts for `warmup_requests` (one window each, so they fit any export's token budget).
    WARMUP_TEXTS = (
        "a short sentence.",
        "A somewhat longer sentence, with punctuation, "
        "numbers 123 and words that will be split into several word pieces by the "
        "tokenizer.",
    )

    def __init__(self, config, tokenizer):
        self.config = config  # the run's FinetuneConfig
        self.settings = config.task_settings  # this task's settings_class
        self.tokenizer = tokenizer
        self.train_features = None
        self.eval_features = None
        self.data_stats = {}

    @classmethod
    def is_file_source(cls, source):
        """True if the data source `source` (--train_file / --eval_file) names a local file
        (checked up front and never written); tasks with other sources say no to those."""
        return True

    # --- subclasses
    def load(self):
        raise NotImplementedError

    def task_info(self):
        raise NotImplementedError

    def build_model(self, encoder):
        """The task model for this run: by default `model_from_info(encoder, task_info())`."""
        return self.model_from_info(encoder, self.task_info())

    @classmethod
    def model_from_info(cls, encoder, task_info):
        """The task model described by a config.json "task" dict (ValueError if incomplete)."""
        raise NotImplementedError

    def make_dataset(self, features, batches, with_labels=True, compile_cost_tokens=0):
        """tf.data batches of `features` (see bert_tf.data.batching.make_dataset)."""
        return make_dataset(
            features, batches, with_labels=with_labels, compile_cost_tokens=compile_cost_tokens
        )

    @property
    def objective(self):
        raise NotImplementedError

    def evaluate(self, outputs):
        raise NotImplementedError

    def write_predictions(self, model_dir, outputs):
        raise NotImplementedError

    # --- shared
    @classmethod
    def warmup_requests(cls, task_info):
        """Two requests to the export's text-in signature (1 and 2 rows), {input name: list}:
        replayed by TF Serving when it loads the model. Default: the `text` input."""
        return [{"text": list(cls.WARMUP_TEXTS[:1])}, {"text": list(cls.WARMUP_TEXTS)}]

    def predict(self, model, batch_size):
        """Runs the model over the eval features (length-bucketed batches) and returns, per
        eval feature in the original order, {output name: numpy array} (per-token outputs
        trimmed to the feature's length)."""
        features = self.eval_features
        batches = batch_order(features.lengths, batch_size, shuffle=False)
        dataset = self.make_dataset(features, batches, with_labels=False)
        fn = _predict_fn(model, dataset.element_spec)
        lengths = features.lengths
        results = [None] * len(features)
        for idx, inputs in zip(batches, dataset):
            out = fn(inputs)
            out = {k: v.numpy() for k, v in out.items()}
            for row, i in enumerate(idx):
                results[i] = {
                    k: (v[row, : lengths[i]] if self.per_token(k) else v[row])
                    for k, v in out.items()
                }
        return results

    def per_token(self, output_name):
        """True for outputs with a time axis ([B, T, ...]) to trim per feature."""
        return False

    # --- exports: export/ builds every format from these (bert_tf/serving_graph/context.py)
    @classmethod
    def serving_signature(cls, ctx):
        """The SavedModel's text-in `serving_default`: a tf.function over string inputs, built
        from a ServingContext `ctx` (tokenize, pack, run_model, split_windows, check_request,
        seq_length, label_names, task). A task without one cannot be exported."""
        raise NotImplementedError(f"task {cls.name!r} declares no serving signature")

    @classmethod
    def tflite_graph(cls, ctx):
        """The batch-1 TFLite graph: (input names, tf.function over string [1] inputs), built
        from a TFLiteContext `ctx` (tokenizer, pack_row, pack_windows, run_model, ...)."""
        raise NotImplementedError(f"task {cls.name!r} declares no TFLite graph")

    @classmethod
    def tflite_tokenizers(cls):
        """The in-graph tokenizers its TFLite graph works with: "exact" (ids and offsets);
        "fast" too where the graph needs no character offsets."""
        return ("exact",)

    @classmethod
    def tflite_label_file(cls):
        """Whether export.tflite writes FILE.labels.txt beside the model: the label names in
        label_id order, for apps that read the label_id output."""
        return False

    @classmethod
    def encoded_input_specs(cls):
        """The inputs of the SavedModel's `serving_encoded`: {name: int32 TensorSpec},
        [B, T] by default."""
        return {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in ENCODER_INPUTS}


ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def declares(task_cls, export):
    """Whether `task_cls` declares `export` ("serving_signature" or "tflite_graph") instead
    of inheriting Task's refusal (tasks that are not a Task, like pre-training, declare none)."""
    if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
        return False
    return getattr(task_cls, export).__func__ is not getattr(Task, export).__func__


def _predict_fn(model, spec):
    """`model(inputs, training=False)` as a tf.function traced once, for the batches of
    `spec` (their lengths vary: dimensions None), and kept on the model for later epochs."""
    cached = getattr(model, "_bert_tf_predict_fn", None)
    if cached is None or cached[0] != spec:
        fn = tf.function(
            lambda inputs: model(inputs, training=False),
            input_signature=[spec],
            autograph=False,  # the model has no Python control flow on tensors (Trainer)
        )
        cached = model._bert_tf_predict_fn = (spec, fn)
    return cached[1]


def softmax(logits):
    x = np.asarray(logits, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def write_jsonl(path, rows):
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def per_example_ce(labels, logits):
    """Sparse softmax cross-entropy in float32; labels int [..], logits [.., C]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
    )
