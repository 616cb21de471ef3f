"""The multiple_choice TFLite graph (Task.tflite_graph), batch 1:

    context string [1], choices string [C] -> probabilities float32 [C], choice int32 [1]

C is the model dir's num_choices, fixed in the graph (export.tflite's TFLiteMultipleChoice
refuses another count before invoking).
"""

import tensorflow as tf

from bert_tf.serving_graph.context import string_spec


def build(ctx):
    """-> (input names, tf.function) for a TFLiteContext: context [1], choices [C] (or
    [1, C]; C = the model dir's num_choices, fixed in the graph) -> probabilities float32
    [C], choice int32 [1]. Each `[CLS] context [SEP] choice_i [SEP]` is packed as the
    SavedModel's (the one packer, longest-first) and padded to seq_length."""
    n_choices = int(ctx.task.get("num_choices") or 0)
    if n_choices < 1:
        raise ValueError(
            f"multiple_choice: task.num_choices {ctx.task.get('num_choices')!r}: "
            f"expected an integer >= 1 (the graph's number of choices)"
        )
    tok, seq_length = ctx.tokenizer, ctx.seq_length

    @tf.function(input_signature=[string_spec("context"), string_spec("choices")])
    def serving_default(context, choices):
        a = tok.ids(context)
        # C tokenizer copies: the tokenizer takes one string (a wrong count fails in RESHAPE)
        flat = tf.reshape(choices, [n_choices])  # [C]
        rows = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
        for i in range(n_choices):
            # a gather (LiteRT's UNPACK and slices take no strings) -> string [1]
            ids, types = ctx.pack_row([a, tok.ids(tf.gather(flat, [i]))])
            # T = seq_length, static (see tflite_windows.py); the mask hides the padding
            pad = [[0, seq_length - tf.size(ids)]]
            rows["input_word_ids"].append(tf.pad(ids, pad))
            rows["input_mask"].append(tf.pad(tf.ones_like(ids), pad))
            rows["input_type_ids"].append(tf.pad(types, pad))
        inputs = {
            k: tf.reshape(tf.stack(v), [1, n_choices, seq_length])  # [1, C, T]
            for k, v in rows.items()
        }
        logits = ctx.run_model(inputs)["logits"]  # [1, C]
        probs = tf.nn.softmax(logits, axis=-1)
        return {
            "probabilities": tf.reshape(probs, [n_choices]),
            "choice": tf.argmax(probs, axis=-1, output_type=tf.int32),
        }  # [1]

    return ["context", "choices"], serving_default
