"""The classify TFLite graph (Task.tflite_graph), batch 1, the SavedModel's outputs:

    text [, text_b] string [1] -> probabilities float32 [1, C], label string [1], label_id
        int32 [1]; a regression model (task.regression): score float32 [1]

Single texts: every window of seq_length - 2 pieces (`doc_stride` apart, padded to the
longest, one model batch), the mean of the window logits; text pairs: one row, longest-first
truncation (the one packer's dense form).
"""

import tensorflow as tf

from bert_tf.serving_graph.context import string_spec
from bert_tf.tasks.classify.serving import answer_fn, label_names


def build(ctx):
    """-> (input names, tf.function over string [1] inputs) for a TFLiteContext."""
    tok = ctx.tokenizer
    answer = answer_fn(label_names(ctx), bool(ctx.task.get("regression")))
    if ctx.task.get("text_b"):  # longest-first truncation, as fine-tuning (no windows)

        @tf.function(input_signature=[string_spec("text"), string_spec("text_b")])
        def serving_default(text, text_b):
            ids, types = ctx.pack_row([tok.ids(text), tok.ids(text_b)])
            return answer(ctx.run_row(ids, types)["logits"])

        return ["text", "text_b"], serving_default

    stride = ctx.window_stride

    @tf.function(input_signature=[string_spec("text")])
    def serving_default(text):
        # every window of seq_length - 2 pieces; the mean of the window logits
        inputs, _ = ctx.pack_windows([tok.cls_id], tok.ids(text), ctx.seq_length - 2, stride)
        logits = ctx.run_model(inputs)["logits"]  # [R, C]
        return answer(tf.reduce_mean(logits, axis=0, keepdims=True))

    return ["text"], serving_default
