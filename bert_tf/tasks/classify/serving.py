"""The classify SavedModel signature (Task.serving_signature):

    serving_default(text [, text_b] string [B]) -> probabilities float [B, C], label string
        [B], label_id int32 [B]; regression models (task.regression): score float [B]

Single texts longer than seq_length - 2 pieces: the mean of the logits of their windows
(`doc_stride` apart, bert_tf/serving_graph/windows.py), as fine-tuning evaluates; text pairs
are truncated longest-first to seq_length, as fine-tuning (one row each).
"""

import tensorflow as tf

from bert_tf.serving_graph.context import string_spec


def label_names(ctx):
    """The label names of label_id order (the ids as strings when none were recorded)."""
    return ctx.label_names or [str(i) for i in range(ctx.model.num_classes)]


def answer_fn(names, regression):
    """logits [B, C] -> the classify outputs (regression: score [B])."""
    names = tf.constant(names)

    def answer(logits):
        if regression:
            return {"score": logits[:, 0]}
        probs = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probs, axis=-1, output_type=tf.int32)  # [B]
        return {"probabilities": probs, "label": tf.gather(names, label_id), "label_id": label_id}

    return answer


def build(ctx):
    """The text-in signature of a ServingContext holding a BertClassifier."""
    answer = answer_fn(label_names(ctx), bool(ctx.task.get("regression")))
    if ctx.task.get("text_b"):

        @tf.function(input_signature=[string_spec("text"), string_spec("text_b")])
        def serving_default(text, text_b):
            # one row per pair: longest-first truncation, as fine-tuning (no windows)
            text, text_b = ctx.check_request("classify", text, text_b)
            inputs = ctx.pack([ctx.tokenize(text)[1], ctx.tokenize(text_b)[1]])
            return answer(ctx.run_model(inputs)["logits"])  # [B, C]

        return serving_default

    @tf.function(input_signature=[string_spec("text")])
    def serving_default(text):
        # long texts: every window of seq_length - 2 pieces, the mean of the window logits
        # (as the fine-tuning evaluation)
        (checked,) = ctx.check_request("classify", text)
        windows = ctx.split_windows(
            ctx.tokenize(checked)[1], ctx.seq_length - 2, ctx.window_stride, "classify"
        )
        logits = ctx.run_model(ctx.pack([windows.ids]))["logits"]  # [R, C]
        logits = tf.math.unsorted_segment_mean(
            logits, windows.example, tf.shape(text, out_type=tf.int64)[0]
        )  # [B, C]
        return answer(logits)

    return serving_default
