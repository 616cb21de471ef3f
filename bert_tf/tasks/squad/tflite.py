"""The squad TFLite graph (Task.tflite_graph), batch 1, the SavedModel's outputs:

    question, context string [1] -> answer string [1], answer_start / answer_end int32 [1]
        (character offsets into context, -1 for no answer), score float32 [1]

The context is read in `doc_stride` windows, each `[CLS] question [SEP] window [SEP]`, all in
one model batch; a span starts only where its token has its maximum context and the best span
over the windows wins, decoded as the SavedModel (serving.py), in ops LiteRT runs.

Shapes: R windows, T packed length.
"""

import tensorflow as tf

from bert_tf.serving_graph.context import string_spec
from bert_tf.serving_graph.tflite_text import substrings
from bert_tf.serving_graph.tflite_windows import owned_positions
from bert_tf.tasks.squad.serving import squad_settings

_NEG = -1e9


def _best_spans(start_logits, end_logits, is_max, is_ctx, max_answer):
    """Per window [R]: the best span (flat index i * T + j into [T, T]) and its start + end
    logit (_NEG if the window has no allowed span)."""
    width = tf.shape(start_logits)[1]
    pos = tf.range(width)[None, :]
    ex = tf.expand_dims  # (a strided slice adding an axis to a bool tensor does not convert)
    span = ex(start_logits, 2) + ex(end_logits, 1)  # [R, T, T]
    i3, j3 = ex(pos, 2), ex(pos, 1)
    ok = (j3 >= i3) & (j3 - i3 < max_answer) & ex(is_max, 2) & ex(is_ctx, 1)
    flat = tf.reshape(tf.where(ok, span, _NEG), [-1, width * width])  # [R, T*T]
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)
    best_score = tf.where(
        tf.reduce_any(tf.reshape(ok, [-1, width * width]), axis=-1),
        tf.reduce_max(flat, axis=-1),
        _NEG,
    )  # [R]
    return best, best_score


def _squad_answer(out, win, n_tok, s):
    """Model outputs over the windows -> (chosen window, span positions i, j in it, answered?,
    probability of the answer / of no answer), as the SavedModel decodes."""
    start_logits, end_logits = out["start_logits"], out["end_logits"]  # [R, T]
    width = tf.shape(start_logits)[1]
    is_ctx, _, is_max = owned_positions(win, width, n_tok)
    valid = is_ctx | (tf.equal(tf.range(width)[None, :], 0) & s["allow_null"])
    p_start = tf.nn.softmax(tf.where(valid, start_logits, _NEG), axis=-1)
    p_end = tf.nn.softmax(tf.where(valid, end_logits, _NEG), axis=-1)
    best, best_score = _best_spans(start_logits, end_logits, is_max, is_ctx, s["max_answer"])
    top = tf.reduce_max(best_score)
    rows = tf.range(tf.size(best_score))
    chosen = tf.reduce_min(tf.where(best_score >= top, rows, tf.size(rows)))
    null_score = tf.reduce_min(start_logits[:, 0] + end_logits[:, 0])
    answered = top > _NEG / 2
    if s["allow_null"]:
        answered = answered & (null_score - top <= s["threshold"])
    g = lambda x, i: tf.gather(x, i)  # noqa: E731  (dynamic scalar index: a gather)
    bi, bj = g(best, chosen) // width, g(best, chosen) % width
    ps, pe = g(p_start, chosen), g(p_end, chosen)  # [T]
    return chosen, bi, bj, answered, g(ps, bi) * g(pe, bj), ps[0] * pe[0]


def build(ctx):
    """-> (input names, tf.function) for a TFLiteContext."""
    tok, seq_length = ctx.tokenizer, ctx.seq_length
    s = squad_settings(ctx.task, seq_length)

    @tf.function(input_signature=[string_spec("question"), string_spec("context")])
    def serving_default(question, context):
        q = tok.with_offsets(question, "squad")["ids"][: s["max_query"]]
        c = tok.with_offsets(context, "squad")
        # [CLS] q [SEP] window [SEP] for every doc_stride window of the context pieces
        inputs, win = ctx.pack_windows(
            tf.concat([[tok.cls_id], q, [tok.sep_id]], 0),
            c["ids"],
            seq_length - tf.size(q) - 3,
            s["doc_stride"],
            second_type=1,
        )
        n_tok = tf.size(c["ids"])
        chosen, bi, bj, answered, prob, null_prob = _squad_answer(
            ctx.run_model(inputs), win, n_tok, s
        )
        w_start = tf.gather(win.start, chosen)
        piece_i = tf.maximum(bi - win.first + w_start, 0)
        piece_j = tf.maximum(bj - win.first + w_start, 0)
        n_safe = tf.maximum(n_tok - 1, 0)
        pad = tf.zeros([1], tf.int32)

        def pick(name, i):
            return tf.gather(tf.concat([c[name], pad], 0), tf.minimum(i, n_safe))

        b_start = tf.where(answered, pick("byte_start", piece_i), 0)
        b_end = tf.where(answered, pick("byte_end", piece_j), 0)
        text = substrings(context, tf.reshape(b_start, [1]), tf.reshape(b_end, [1]))  # [1]
        offset = lambda name, i: tf.reshape(  # noqa: E731
            tf.where(answered, pick(name, i), -1), [1]
        )
        return {
            "answer": text,
            "answer_start": offset("char_start", piece_i),
            "answer_end": offset("char_end", piece_j),
            "score": tf.reshape(
                tf.where(answered, prob, null_prob if s["allow_null"] else 0.0), [1]
            ),
        }

    return ["question", "context"], serving_default
