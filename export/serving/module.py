"""The serving tf.Module of a task model: raw strings in, answers out, all in the graph.

`ServingModule` is the ServingContext (bert_tf/serving_graph/context.py) a task's
`serving_signature(ctx)` is built from (bert_tf/tasks/<task>/serving.py); it adds the request
budget (budget.py) and the generic `serving_encoded`. Nothing here names a task.

Signatures (see docs/serving.md for the full tensor layout):
  serving_default   the task's text-in signature, documented in bert_tf/tasks/<task>/serving.py
                    (classify, tag, squad, multiple_choice); every task: at most
                    `max_request_bytes` bytes of text per request, checked before tokenization,
                    and at most `max_request_tokens` model batch rows x seq_length, checked
                    before the encoder (budget.py), else INVALID_ARGUMENT
  serving_encoded   input_word_ids, input_mask, input_type_ids int32 (Task.encoded_input_specs:
                    [B, T]; [B, C, T] for multiple_choice) -> the raw model outputs (+
                    probabilities where there are logits); ids outside the embeddings
                    (negative, >= vocab / type vocab), a mask other than 0/1 or T over
                    max_position_embeddings are INVALID_ARGUMENT

Shape legend: B = batch, T = packed length, C = classes / labels, W = words, E = entities.
"""

import tensorflow as tf

from bert_tf.serving_graph import text as text_lib
from bert_tf.serving_graph.context import ServingContext
from bert_tf.tasks import get_task
from bert_tf.text.vocab import load_vocab
from export.serving import budget as budget_lib
from export.serving.saving import hold_keras_layer

ENCODED_SIGNATURE = "serving_encoded"


def check_encoded_inputs(inputs, config):
    """Refuses ids the embeddings do not hold: Keras' embedding lookup wraps a negative id
    around (-1 = the last row) instead of failing, so without this a negative id would answer
    silently. Returns the inputs, made to depend on the checks (INVALID_ARGUMENT on failure)."""
    checks = []
    for name, limit in (
        ("input_word_ids", config.vocab_size),
        ("input_type_ids", config.type_vocab_size),
    ):
        ids = inputs[name]
        checks.append(
            tf.debugging.Assert(
                tf.reduce_all((ids >= 0) & (ids < limit)),
                [
                    f"serving_encoded: {name} must be in [0, {limit}); got values from",
                    tf.reduce_min(ids),
                    "to",
                    tf.reduce_max(ids),
                ],
                summarize=1,
            )
        )
    mask = inputs["input_mask"]
    checks.append(
        tf.debugging.Assert(
            tf.reduce_all((mask == 0) | (mask == 1)), ["serving_encoded: input_mask must be 0 or 1"]
        )
    )
    length = tf.shape(inputs["input_word_ids"])[-1]  # T ([B, T] or [B, C, T])
    checks.append(
        tf.debugging.Assert(
            length <= config.max_position_embeddings,
            [
                "serving_encoded: sequence length must be at most "
                f"{config.max_position_embeddings} (max_position_embeddings); got",
                length,
            ],
        )
    )
    with tf.control_dependencies(checks):
        return {k: tf.identity(v) for k, v in inputs.items()}


class ServingModule(ServingContext, tf.Module):
    """Holds the Keras task model, the tokenizer and the label names; builds the signatures
    the task declares (`get_task(task["type"])`)."""

    # the per-request budget (export/serving/budget.py)
    max_request_bytes = budget_lib.DEFAULT_MAX_REQUEST_BYTES
    max_request_tokens = budget_lib.DEFAULT_MAX_REQUEST_TOKENS

    def __init__(self, model, task, vocab_file, lower_case, seq_length, pad_to_longest=True):
        super().__init__()
        # The Keras model stays untracked; its tf.Variables are what the SavedModel restores.
        self.model_variables = hold_keras_layer(self, "model", model)
        self.task = dict(task)
        self.task_class = get_task(self.task["type"])
        self.seq_length = int(seq_length)
        self.pad_to_longest = bool(pad_to_longest)
        vocab = load_vocab(vocab_file)
        self.cls_id = vocab.index(text_lib.CLS)
        self.sep_id = vocab.index(text_lib.SEP)
        self.tokenizer = text_lib.make_tokenizer(vocab_file, lower_case)
        self.is_continuation = tf.constant([t.startswith("##") for t in vocab])
        self.label_names = [str(x) for x in task.get("label_names", [])]

    # ---- the budget (ServingContext's abstract part) -----------------------------------
    def check_request(self, what, *strings, rows=None, unit="windows"):
        return budget_lib.check_request(self, what, list(strings), rows, unit)

    def limit_windows(self, n_w, what, unit="windows"):
        return budget_lib.check_tokens(
            tf.reduce_sum(n_w), self.seq_length, self.max_request_tokens, what, [n_w], unit
        )[0]

    # ---- the signatures ----------------------------------------------------------------
    def encoded_fn(self, specs=None):
        @tf.function(input_signature=[specs or self.task_class.encoded_input_specs()])
        def serving_encoded(inputs):
            inputs = check_encoded_inputs(inputs, self.model.encoder.config)
            outputs = dict(self.run_model(inputs))
            if "logits" in outputs:
                outputs["probabilities"] = tf.nn.softmax(outputs["logits"], axis=-1)
            return outputs

        return serving_encoded

    def signatures(self):
        """{"serving_default": the task's text-in signature (Task.serving_signature),
        "serving_encoded": the encoder inputs (Task.encoded_input_specs) -> model outputs}."""
        return {
            "serving_default": self.task_class.serving_signature(self),
            ENCODED_SIGNATURE: self.encoded_fn(),
        }
