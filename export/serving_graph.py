"""The serving tf.Module of a task model: raw strings in, answers out, all in the graph.

Signatures (see docs/serving.md for the full tensor layout):
  classify  serving_default(text [, text_b]) -> probabilities float [B, C], label string [B],
            label_id int32 [B]; regression models (task.regression): score float [B];
            single texts longer than seq_length - 2 pieces: the mean of the logits of their
            windows (export/serving_windows.py, `doc_stride` apart), as fine-tuning evaluates;
            text pairs: truncated longest-first to seq_length, as fine-tuning (one row each)
  tag       serving_default(text) -> entity_text string [B, E], entity_type string [B, E],
            entity_start / entity_end int32 [B, E] (character offsets, end exclusive),
            entity_score float [B, E], num_entities int32 [B]; padding "" / -1 / 0.0; long
            texts in windows, each piece labeled from its max-context window
  squad     serving_default(question, context) -> answer string [B], answer_start /
            answer_end int32 [B] (character offsets into context, -1 for no answer),
            score float [B]; long contexts are read in `doc_stride` windows
  (every task: at most `max_request_bytes` bytes of text per request, checked before
  tokenization, and at most `max_request_tokens` model batch rows x seq_length, checked
  before the encoder (export/serving_budget.py), else INVALID_ARGUMENT)
  multiple_choice
            serving_default(context [B], choices [B, C]) -> probabilities float [B, C],
            choice int32 [B] (export/serving_choice.py)
  every     serving_encoded(input_word_ids, input_mask, input_type_ids int32 [B, T];
            [B, C, T] for multiple_choice) -> the raw model outputs (+ probabilities for
            classify/tag/multiple_choice); ids outside the embeddings (negative, >= vocab /
            type vocab), a mask other than 0/1 or T over max_position_embeddings are
            INVALID_ARGUMENT

Shape legend: B = batch, T = packed length, C = classes / labels, W = words, E = entities.
"""

import tensorflow as tf

from bert_tf.text.vocab import load_vocab
from export import (serving_budget, serving_choice, serving_squad, serving_tag,
                    serving_windows, text_graph)
from export.saving import hold_keras_layer

ENCODED_SIGNATURE = "serving_encoded"
# task type -> the ServingModule method that builds its serving_default signature
SIGNATURES = {"classify": "_classify_fn", "tag": "_tag_fn", "squad": "_squad_fn",
              "multiple_choice": "_multiple_choice_fn"}


def _string_spec(name):
    return tf.TensorSpec([None], tf.string, name=name)


_ENCODED_SPECS = {name: tf.TensorSpec([None, None], tf.int32, name=name)
                  for name in ("input_word_ids", "input_mask", "input_type_ids")}


def check_encoded_inputs(inputs, config):
    """Refuses ids the embeddings do not hold: Keras' embedding lookup wraps a negative id
    around (-1 = the last row) instead of failing, so without this a negative id would answer
    silently. Returns the inputs, made to depend on the checks (INVALID_ARGUMENT on failure)."""
    checks = []
    for name, limit in (("input_word_ids", config.vocab_size),
                        ("input_type_ids", config.type_vocab_size)):
        ids = inputs[name]
        checks.append(tf.debugging.Assert(
            tf.reduce_all((ids >= 0) & (ids < limit)),
            [f"serving_encoded: {name} must be in [0, {limit}); got values from",
             tf.reduce_min(ids), "to", tf.reduce_max(ids)], summarize=1))
    mask = inputs["input_mask"]
    checks.append(tf.debugging.Assert(
        tf.reduce_all((mask == 0) | (mask == 1)),
        ["serving_encoded: input_mask must be 0 or 1"]))
    length = tf.shape(inputs["input_word_ids"])[-1]                # T ([B, T] or [B, C, T])
    checks.append(tf.debugging.Assert(
        length <= config.max_position_embeddings,
        [f"serving_encoded: sequence length must be at most {config.max_position_embeddings} "
         f"(max_position_embeddings); got", length]))
    with tf.control_dependencies(checks):
        return {k: tf.identity(v) for k, v in inputs.items()}


class ServingModule(tf.Module):
    """Holds the Keras task model, the tokenizer and the label names."""

    # the per-request budget (export/serving_budget.py)
    max_request_bytes = serving_budget.DEFAULT_MAX_REQUEST_BYTES
    max_request_tokens = serving_budget.DEFAULT_MAX_REQUEST_TOKENS

    def __init__(self, model, task, vocab_file, lower_case, seq_length, pad_to_longest=True):
        super().__init__()
        # The Keras model stays untracked; its tf.Variables are what the SavedModel restores.
        self.model_variables = hold_keras_layer(self, "model", model)
        self.task = dict(task)
        self.seq_length = int(seq_length)
        self.pad_to_longest = bool(pad_to_longest)
        vocab = load_vocab(vocab_file)
        self.cls_id = vocab.index(text_graph.CLS)
        self.sep_id = vocab.index(text_graph.SEP)
        self.tokenizer = text_graph.make_tokenizer(vocab_file, lower_case)
        self._vocab_is_continuation = tf.constant([t.startswith("##") for t in vocab])
        self.label_names = [str(x) for x in task.get("label_names", [])]

    # ---- shared pieces --------------------------------------------------------------
    @property
    def token_budget(self):
        """(seq_length, max_request_tokens): serving_windows.split_windows' `budget`."""
        return self.seq_length, self.max_request_tokens

    def _checked(self, what, *strings, rows=None):
        """The request's strings, made to depend on the budget checks before tokenization
        (serving_budget.check_request)."""
        return serving_budget.check_request(self, what, list(strings), rows)

    def _run_model(self, inputs):
        return self.model(inputs, training=False)

    def _tokenize(self, text):
        clean = text_graph.clean_utf8(text)
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(clean)
        return clean, ids, starts, ends

    def _pack(self, segments, trimmer="longest_first"):
        return text_graph.pack(segments, self.seq_length, self.cls_id, self.sep_id,
                               self.pad_to_longest, trimmer)

    def encoded_fn(self, specs=None):
        @tf.function(input_signature=[specs or _ENCODED_SPECS])
        def serving_encoded(inputs):
            inputs = check_encoded_inputs(inputs, self.model.encoder.config)
            outputs = dict(self._run_model(inputs))
            if "logits" in outputs:
                outputs["probabilities"] = tf.nn.softmax(outputs["logits"], axis=-1)
            return outputs
        return serving_encoded

    def signatures(self):
        """{"serving_default": the task's text-in signature (SIGNATURES), "serving_encoded"}."""
        build = getattr(self, SIGNATURES[self.task["type"]])
        specs = serving_choice.ENCODED_SPECS if self.task["type"] == "multiple_choice" else None
        return {"serving_default": build(), ENCODED_SIGNATURE: self.encoded_fn(specs)}

    def _multiple_choice_fn(self):
        return serving_choice.multiple_choice_fn(self)

    # ---- classify -------------------------------------------------------------------
    def _classify_fn(self):
        names = tf.constant(self.label_names or
                            [str(i) for i in range(self.model.num_classes)])
        pair = bool(self.task.get("text_b"))

        regression = bool(self.task.get("regression"))

        def answer(segments):
            inputs, _ = self._pack(segments)
            return answer_from_logits(self._run_model(inputs)["logits"])  # [B, C]

        def answer_from_logits(logits):
            if regression:
                return {"score": logits[:, 0]}
            probs = tf.nn.softmax(logits, axis=-1)
            label_id = tf.argmax(probs, axis=-1, output_type=tf.int32)   # [B]
            return {"probabilities": probs, "label": tf.gather(names, label_id),
                    "label_id": label_id}

        if pair:
            @tf.function(input_signature=[_string_spec("text"), _string_spec("text_b")])
            def serving_default(text, text_b):
                # one row per pair: longest-first truncation, as fine-tuning (no windows)
                text, text_b = self._checked("classify", text, text_b)
                return answer([self._tokenize(text)[1], self._tokenize(text_b)[1]])
        else:
            @tf.function(input_signature=[_string_spec("text")])
            def serving_default(text):
                # long texts: every window of seq_length - 2 pieces, the mean of the
                # window logits (as the fine-tuning evaluation)
                checked, = self._checked("classify", text)
                windows = serving_windows.split_windows(
                    self._tokenize(checked)[1], self.seq_length - 2, self._stride(),
                    self.token_budget, "classify")
                inputs, _ = self._pack([windows.ids])
                logits = self._run_model(inputs)["logits"]                   # [R, C]
                logits = tf.math.unsorted_segment_mean(
                    logits, windows.example, tf.shape(text, out_type=tf.int64)[0])  # [B, C]
                return answer_from_logits(logits)
        return serving_default

    # ---- tag (export/serving_tag.py), squad (export/serving_squad.py) ---------------------
    def _stride(self):
        """Window stride of tag / classify (task.doc_stride, else half a window)."""
        return serving_windows.single_text_stride(self.task, self.seq_length)

    def _tag_fn(self):
        return serving_tag.tag_fn(self)

    def _squad_fn(self):
        return serving_squad.squad_fn(self)
