"""The multiple_choice SavedModel signature (Task.serving_signature): a context and its C
choices in, the choice out.

    serving_default(context string [B], choices string [B, C])
        -> probabilities float [B, C] (softmax over the C choices), choice int32 [B]
    serving_encoded(input_word_ids, input_mask, input_type_ids int32 [B, C, T]) -> logits,
        probabilities

Each (context, choice_i) pair is packed as the fine-tuning data is: `[CLS] context [SEP]
choice_i [SEP]`, longest-first truncation to seq_length, and all B * C sequences run as ONE
model batch padded to its own longest sequence, within the request budget
(the export's: bytes of all strings, B x C x seq_length tokens, both checked
before tokenization). Any C >= 1 works (the model scores each
choice on its own); every row of one request has the same C (a [B, C] tensor).

Shape legend: B = examples, C = choices, T = packed length, P = word pieces.
"""

import tensorflow as tf

from bert_tf.serving_graph.context import string_spec

# serving_encoded's inputs (Task.encoded_input_specs): [B, C, T]
ENCODED_SPECS = {
    name: tf.TensorSpec([None, None, None], tf.int32, name=name)
    for name in ("input_word_ids", "input_mask", "input_type_ids")
}


def build(ctx):
    """The text-in signature of a ServingContext holding a BertMultipleChoice."""

    @tf.function(input_signature=[string_spec("context"), string_spec("choices", rank=2)])
    def serving_default(context, choices):
        b, c = tf.shape(choices)[0], tf.shape(choices)[1]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(context)[0],
                b,
                message=("context [B] and choices [B, C] need the same batch size B"),
            ),
            tf.debugging.assert_equal(
                tf.logical_or(b == 0, c > 0),
                True,
                message=("choices: expected at least one choice per example"),
            ),
        ]
        with tf.control_dependencies(checks):
            # the budget: bytes, then B x C rows x seq_length, before any tokenization
            rows = tf.cast(b, tf.int64) * tf.cast(c, tf.int64)
            context, choices = ctx.check_request(
                "multiple_choice", context, choices, rows=rows, unit="choices"
            )
            context_ids = ctx.tokenize(context)[1]  # [B, (P)]
            choice_ids = ctx.tokenize(tf.reshape(choices, [-1]))[1]  # [B*C, (P)]
        example = tf.repeat(tf.range(b), c)  # [B*C]
        inputs = ctx.pack([tf.gather(context_ids, example), choice_ids])  # [B*C, T]
        inputs = {
            k: tf.reshape(v, [b, c, tf.shape(v)[1]])  # [B, C, T]
            for k, v in inputs.items()
        }
        logits = ctx.run_model(inputs)["logits"]  # [B, C]
        probabilities = tf.nn.softmax(logits, axis=-1)
        choice = tf.argmax(probabilities, axis=-1, output_type=tf.int32)  # [B]
        return {"probabilities": probabilities, "choice": choice}

    return serving_default
