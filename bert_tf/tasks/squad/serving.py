"""The squad SavedModel signature (Task.serving_signature): question answering over contexts
of any length, decoded as the fine-tuning evaluation decodes.

    serving_default(question string [B], context string [B]) -> answer string [B],
        answer_start / answer_end int32 [B] (character offsets into context, -1 for no
        answer), score float [B]

The context is cut into windows `doc_stride` pieces apart (each packed as [CLS] question [SEP]
window [SEP]), all windows of the request run as ONE model batch (within the export's request
budget, else INVALID_ARGUMENT), a span may start only where its token
has its maximum context, and the best span (start + end logit) over the example's windows wins;
the null score is the smallest [CLS] score of its windows (version 2: no answer iff null - best
> null_score_diff_threshold).

Shapes: B examples, R windows (all examples), T packed length, L = max window, N = context
pieces of the batch.
"""

import tensorflow as tf

from bert_tf.serving_graph import text as text_lib
from bert_tf.serving_graph import windows as windows_lib
from bert_tf.serving_graph.context import string_spec

_NEG = -1e9


def squad_settings(task, seq_length):
    """The decoding settings of a squad task (task.json), as the fine-tuning evaluation."""
    return {
        "max_answer": int(task.get("max_answer_length", 30)),
        "max_query": min(int(task.get("max_query_length", 64)), seq_length - 4),
        "doc_stride": max(int(task.get("doc_stride", 128)), 1),
        "allow_null": bool(task.get("version_2_with_negative", task.get("version_2"))),
        "threshold": float(task.get("null_score_diff_threshold") or 0.0),
    }


def build(ctx):
    """The text-in signature of a ServingContext holding a BertSpanQA."""
    s = squad_settings(ctx.task, ctx.seq_length)

    @tf.function(input_signature=[string_spec("question"), string_spec("context")])
    def serving_default(question, context):
        question, context = ctx.check_request("SQuAD", question, context, unit="context windows")
        q_ids = ctx.tokenize(question)[1][:, : s["max_query"]]  # [B, (Q)]
        clean, c_ids, c_starts, c_ends = ctx.tokenize(context)  # [B, (P)]
        windows, first = _windows(ctx, q_ids, c_ids, s["doc_stride"])
        inputs = ctx.pack([tf.gather(q_ids, windows.example), windows.ids], trimmer="waterfall")
        spans = _best_spans(
            ctx.run_model(inputs),
            windows,
            first,
            tf.shape(c_ids.flat_values, out_type=tf.int64)[0],
            s,
        )
        chosen, answered = _choose(spans, windows.example, tf.shape(context)[0], s)
        return _answers(
            spans, windows, first, chosen, answered, (clean, c_starts, c_ends), s["allow_null"]
        )

    return serving_default


def _windows(ctx, q_ids, c_ids, doc_stride):
    """-> (windows.Windows of the contexts [R], first context position [R]): windows
    of seq_length - question - 3 pieces, min(window, doc_stride) apart (the original rule)."""
    n_q, n_c = q_ids.row_lengths(), c_ids.row_lengths()  # [B]
    window = ctx.seq_length - n_q - 3  # [B] >= 1
    stride = tf.minimum(window, doc_stride)
    # windows per example: 1 + ceil((C - window) / stride) (the original rule)
    n_w = 1 + (tf.maximum(n_c - window, 0) + stride - 1) // stride  # [B]
    n_w = ctx.limit_windows(n_w, "SQuAD", unit="context windows")
    example = tf.repeat(tf.range(tf.size(n_w, out_type=tf.int64)), n_w)  # [R]
    k = tf.ragged.range(n_w).flat_values  # [R] window index
    start = k * tf.gather(stride, example)  # [R] first piece
    length = tf.minimum(tf.gather(n_c, example) - start, tf.gather(window, example))
    flat_begin = tf.gather(c_ids.row_starts(), example) + start  # [R]
    ids = tf.gather(c_ids.flat_values, tf.ragged.range(flat_begin, flat_begin + length))
    return (
        windows_lib.Windows(ids, example, k, start, length, flat_begin),
        tf.gather(n_q, example) + 2,
    )


def _best_spans(out, windows, first, num_pieces, s):
    """Per window [R]: the best span's positions i, j, its start + end logit (_NEG if none is
    allowed), the [CLS] score, and the softmaxes p_start / p_end [R, T] over the context
    positions (+ [CLS] for version 2)."""
    start_logits, end_logits = out["start_logits"], out["end_logits"]  # [R, T]
    width = tf.shape(start_logits)[1]
    is_max, token = windows_lib.owned_positions(windows, first, width, num_pieces)
    is_ctx = token < num_pieces  # [R, T]
    pos = tf.range(width, dtype=tf.int64)[None, :]  # [1, T]
    valid = is_ctx | ((pos == 0) & s["allow_null"])
    neg = tf.fill(tf.shape(start_logits), _NEG)
    span = start_logits[:, :, None] + end_logits[:, None, :]  # [R, T, T]
    band = tf.linalg.band_part(
        tf.ones([width, width], tf.bool), 0, tf.minimum(s["max_answer"] - 1, width - 1)
    )
    ok = band[None] & is_max[:, :, None] & is_ctx[:, None, :]  # [R, T, T]
    flat = tf.reshape(
        tf.where(ok, span, tf.fill(tf.shape(span), _NEG)), [-1, width * width]
    )  # [R, T*T]
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)  # [R]
    return {
        "i": best // width,
        "j": best % width,
        "score": tf.where(tf.reduce_any(ok, axis=[1, 2]), tf.reduce_max(flat, axis=-1), _NEG),
        "null": start_logits[:, 0] + end_logits[:, 0],
        "p_start": tf.nn.softmax(tf.where(valid, start_logits, neg), axis=-1),
        "p_end": tf.nn.softmax(tf.where(valid, end_logits, neg), axis=-1),
    }


def _choose(spans, example, batch, s):
    """-> (the window row of each example's best span [B], answered? [B]): the first window
    with the best span; version 2 answers iff null - best <= threshold (the original)."""
    n = tf.cast(batch, tf.int64)
    best_score = tf.math.unsorted_segment_max(spans["score"], example, n)  # [B]
    rows = tf.size(example, out_type=tf.int64)
    is_best = spans["score"] >= tf.gather(best_score, example)
    chosen = tf.math.unsorted_segment_min(tf.where(is_best, tf.range(rows), rows), example, n)
    answered = best_score > _NEG / 2
    if s["allow_null"]:
        null_score = tf.math.unsorted_segment_min(spans["null"], example, n)
        answered = answered & (null_score - best_score <= s["threshold"])
    return chosen, answered


def _answers(spans, windows, first, chosen, answered, context, allow_null):
    """The chosen spans -> the signature's outputs (text and character offsets into the
    cleaned context; "" / -1 / the [CLS] probability (v2) or 0 when not answered)."""
    clean, c_starts, c_ends = context
    pick = lambda values: tf.gather(values, chosen)  # noqa: E731  [R] -> [B]
    i_b, j_b = tf.cast(pick(spans["i"]), tf.int64), tf.cast(pick(spans["j"]), tf.int64)
    piece_i = tf.maximum(i_b - pick(first) + pick(windows.start), 0)  # [B] context piece
    piece_j = tf.maximum(j_b - pick(first) + pick(windows.start), 0)

    def char_offset(byte_offsets, piece):
        b = _gather_rows(byte_offsets.to_tensor(default_value=0), piece)
        ch = text_lib.byte_to_char_offsets(clean, tf.RaggedTensor.from_tensor(b[:, None]))
        return tf.where(answered, ch.flat_values, -1)

    ch_start, ch_end = char_offset(c_starts, piece_i), char_offset(c_ends, piece_j)
    p_start, p_end = pick(spans["p_start"]), pick(spans["p_end"])  # [B, T]
    score = _gather_rows(p_start, i_b) * _gather_rows(p_end, j_b)
    null_prob = p_start[:, 0] * p_end[:, 0]
    text = tf.strings.substr(
        clean,
        tf.cast(tf.maximum(ch_start, 0), tf.int32),
        tf.cast(tf.maximum(ch_end - ch_start, 0), tf.int32),
        unit="UTF8_CHAR",
    )
    return {
        "answer": tf.where(answered, text, ""),
        "answer_start": tf.cast(ch_start, tf.int32),
        "answer_end": tf.cast(ch_end, tf.int32),
        "score": tf.where(answered, score, null_prob if allow_null else 0.0),
    }


def _gather_rows(matrix, index):
    """matrix [B, N], index [B] -> matrix[b, index[b]] [B] (0 where the row is empty)."""
    n = tf.shape(matrix, out_type=tf.int64)[1]
    matrix = tf.pad(matrix, [[0, 0], [0, 1]])
    index = tf.minimum(index, n)
    return tf.gather(matrix, index, batch_dims=1)
