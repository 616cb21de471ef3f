"""Batch-1 TFLite graphs of each task: strings in, decoded answers out (registry by task type).

Every graph tokenizes in the graph (export.tflite_text: the exact original BERT tokenizer by
default, or tf.text's FastBertTokenizer), runs the model on [CLS] ... [SEP] packed to its own
length and decodes as the SavedModel's serving_default does (export/serving_graph.py), with ops
LiteRT runs (builtins + tf.text's TFLite kernels). Inputs are string [1]; a batch of two or
more strings fails at run time (export.tflite.TFLiteModel answers lists row by row).

A task plugs in with `register("type")` on a function (model, vocab, task, seq_length,
tokenizer) -> (input names, tf.function over string [1] inputs).

Shapes: P pieces, T packed length, C labels, W words, E entities, R windows.
"""

import tensorflow as tf

from export.serving_graph import iob_tables
from export.tflite_text import TFLiteBertTokenizer, fast_bert_tokenize, substrings

_NEG = -1e9
GRAPHS = {}


def register(task_type):
    def wrap(fn):
        GRAPHS[task_type] = fn
        return fn
    return wrap


class Tokenizer:
    """`exact` (original BERT, offsets) or `fast` (tf.text FastBertTokenizer, ids only)."""

    def __init__(self, vocab, lower_case, kind="exact"):
        self.kind = kind
        self.cls_id, self.sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
        self.is_continuation = tf.constant([t.startswith("##") for t in vocab])
        if kind == "exact":
            self.exact = TFLiteBertTokenizer(vocab, lower_case)
        else:
            self.fast = fast_bert_tokenize(vocab, lower_case)

    def ids(self, text):
        if self.kind == "exact":
            return self.exact.tokenize_with_offsets(text)["ids"]
        return self.fast(text)

    def with_offsets(self, text, task_type):
        if self.kind != "exact":
            raise ValueError(f"{task_type}: the TFLite graph needs character offsets, which "
                             f"only the exact tokenizer gives (use --tokenizer=exact)")
        return self.exact.tokenize_with_offsets(text)


def _spec(name):
    # [None], not [1]: with a static [1] the converter folds away the tokenizer's reshape to
    # [1], which is what refuses a batch of two at run time
    return tf.TensorSpec([None], tf.string, name=name)


def _encode(model, ids, types):
    """ids, types int32 [T] -> the model's outputs for the batch of one."""
    ids = ids[None, :]                                                # [1, T]
    return model({"input_word_ids": ids, "input_mask": tf.ones_like(ids),
                  "input_type_ids": types[None, :]}, training=False)


def _pack_pair(a, b, budget, tok):
    """ids a [Pa], b [Pb] -> (ids, types) int32 [T]: [CLS] a [SEP] b [SEP] with the original
    BERT's longest-first truncation to `budget` pieces (the longer one loses a piece, b on
    ties), in closed form."""
    la, lb = tf.size(a), tf.size(b)
    kb = tf.minimum(lb, tf.maximum(budget // 2, budget - la))
    ka = tf.minimum(la, budget - kb)
    ids = tf.concat([[tok.cls_id], a[:ka], [tok.sep_id], b[:kb], [tok.sep_id]], 0)
    types = tf.concat([tf.zeros([ka + 2], tf.int32), tf.ones([kb + 1], tf.int32)], 0)
    return ids, types


@register("classify")
def classify_graph(model, vocab, task, seq_length, tok):
    pair = bool(task.get("text_b"))
    budget = seq_length - (3 if pair else 2)

    def answer(ids, types):
        probs = tf.nn.softmax(_encode(model, ids, types)["logits"], axis=-1)   # [1, C]
        return {"probabilities": probs,
                "label_id": tf.argmax(probs, axis=-1, output_type=tf.int32)}

    if pair:
        @tf.function(input_signature=[_spec("text"), _spec("text_b")])
        def serving_default(text, text_b):
            return answer(*_pack_pair(tok.ids(text), tok.ids(text_b), budget, tok))
        return ["text", "text_b"], serving_default

    @tf.function(input_signature=[_spec("text")])
    def serving_default(text):
        ids = tf.concat([[tok.cls_id], tok.ids(text)[:budget], [tok.sep_id]], 0)
        return answer(ids, tf.zeros_like(ids))
    return ["text"], serving_default


def _label_tables(label_names):
    """IOB2 names -> (prefix [C]; type id [C]; type names + [""]; number of types), the
    SavedModel's rules (export.serving_graph.iob_tables)."""
    prefix, type_ids, types = iob_tables(label_names)
    return (tf.constant(prefix, tf.int32), tf.constant(type_ids, tf.int32),
            tf.constant(types + [""]), len(types))


def _mask(values, keep):
    return tf.gather(values, tf.cast(tf.where(keep)[:, 0], tf.int32))


@register("tag")
def tag_graph(model, vocab, task, seq_length, tok):
    prefix_of, type_of, type_names, n_types = _label_tables(
        [str(x) for x in task["label_names"]])
    budget = seq_length - 2

    @tf.function(input_signature=[_spec("text")])
    def serving_default(text):
        t = tok.with_offsets(text, "tag")
        ids = t["ids"][:budget]                                        # [P]
        p = tf.size(ids)
        packed = tf.concat([[tok.cls_id], ids, [tok.sep_id]], 0)      # [T]
        probs = tf.nn.softmax(_encode(model, packed, tf.zeros_like(packed))["logits"][0],
                              axis=-1)[1:p + 1]                       # [P, C]
        pred = tf.argmax(probs, axis=-1, output_type=tf.int32)
        score = tf.reduce_max(probs, axis=-1)
        # words: a piece starts one unless it is a "##" continuation (or the first piece)
        word_start = (tf.logical_not(tf.gather(tok.is_continuation, ids))
                      | tf.equal(tf.range(p), 0))
        word_of_piece = tf.math.cumsum(tf.cast(word_start, tf.int32)) - 1
        n_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
        w_pred, w_prob = _mask(pred, word_start), _mask(score, word_start)     # [W]
        w_start = _mask(t["char_start"][:budget], word_start)
        w_bstart = _mask(t["byte_start"][:budget], word_start)
        w_end = tf.math.unsorted_segment_max(t["char_end"][:budget], word_of_piece, n_words)
        w_bend = tf.math.unsorted_segment_max(t["byte_end"][:budget], word_of_piece, n_words)
        # IOB2 -> entities (conlleval: I-X after O or another type starts X)
        w_prefix, w_type = tf.gather(prefix_of, w_pred), tf.gather(type_of, w_pred)
        prev_type = tf.concat([[-1], w_type], 0)[:-1]
        begins = tf.equal(w_prefix, 1) | (tf.equal(w_prefix, 2) & tf.not_equal(prev_type,
                                                                               w_type))
        keep = begins | (tf.equal(w_prefix, 2) & tf.equal(prev_type, w_type))
        n_ent = tf.reduce_sum(tf.cast(begins, tf.int32))
        seg = _mask(tf.math.cumsum(tf.cast(begins, tf.int32)) - 1, keep)

        def per_entity(fn, values):
            return fn(_mask(values, keep), seg, n_ent)
        e_start = per_entity(tf.math.unsorted_segment_min, w_start)
        e_end = per_entity(tf.math.unsorted_segment_max, w_end)
        e_bstart = per_entity(tf.math.unsorted_segment_min, w_bstart)
        e_bend = per_entity(tf.math.unsorted_segment_max, w_bend)
        e_type = per_entity(tf.math.unsorted_segment_max, w_type)
        e_score = (per_entity(tf.math.unsorted_segment_sum, w_prob)
                   / tf.cast(per_entity(tf.math.unsorted_segment_sum,
                                        tf.ones_like(w_type)), tf.float32))
        # outputs have max(E, 1) rows: LiteRT cannot hand out an empty string tensor, so a
        # text without entities answers one padding row ("", "", -1, -1, 0.0) and
        # num_entities 0, as the SavedModel pads its [B, E] outputs
        pad = tf.zeros([tf.maximum(1 - n_ent, 0)], tf.int32)
        e_text = substrings(text, tf.concat([e_bstart, pad], 0),
                            tf.concat([e_bend, pad], 0))               # [E']
        e_type = tf.gather(type_names, tf.concat([e_type, pad + n_types], 0))
        return {"entity_text": e_text, "entity_type": e_type,
                "entity_start": tf.concat([e_start, pad - 1], 0),
                "entity_end": tf.concat([e_end, pad - 1], 0),
                "entity_score": tf.concat([e_score, tf.cast(pad, tf.float32)], 0),
                "num_entities": tf.reshape(n_ent, [1])}
    return ["text"], serving_default


def _squad_settings(task, seq_length):
    return {"max_answer": int(task.get("max_answer_length", 30)),
            "max_query": min(int(task.get("max_query_length", 64)), seq_length - 4),
            "doc_stride": max(int(task.get("doc_stride", 128)), 1),
            "allow_null": bool(task.get("version_2_with_negative", task.get("version_2"))),
            "threshold": float(task.get("null_score_diff_threshold") or 0.0)}


def _squad_windows(q, c, seq_length, doc_stride, cls_id, sep_id):
    """Packs [CLS] q [SEP] window [SEP] for every doc_stride window of the context pieces
    c [N] (the original rule) -> (inputs [R, T] x3, window start [R], window length [R],
    first context position)."""
    nq, nc = tf.size(q), tf.size(c)
    window = seq_length - nq - 3
    stride = tf.minimum(window, doc_stride)
    n_w = 1 + (tf.maximum(nc - window, 0) + stride - 1) // stride
    k = tf.range(n_w)                                                  # [R]
    w_start = k * stride
    w_len = tf.maximum(tf.minimum(nc - w_start, window), 0)           # [R]
    # T = seq_length, static: with two dynamic dims the model's mask[:, None, None, :] stays
    # a TF StridedSlice (new_axis_mask) that LiteRT cannot run. Padding does not change the
    # masked model's outputs.
    pos = tf.range(seq_length)[None, :]                               # [1, T]
    first = nq + 2
    # source vector: [CLS] q [SEP] c [PAD]; each cell picks an index into it
    src = tf.concat([[cls_id], q, [sep_id], c, [0]], 0)
    pad_at = nq + 2 + nc
    in_ctx = (pos >= first) & (pos < first + w_len[:, None])          # [R, T]
    is_end = tf.equal(pos, first + w_len[:, None])
    index = tf.where(pos < first, tf.broadcast_to(pos, tf.shape(in_ctx)),
                     tf.where(in_ctx, pos + w_start[:, None], pad_at))
    ids = tf.where(is_end, sep_id, tf.gather(src, index))
    mask = tf.cast(pos <= first + w_len[:, None], tf.int32)
    types = tf.cast(pos >= first, tf.int32) * mask
    fix = lambda x: tf.reshape(x, [-1, seq_length])  # noqa: E731  (static T)
    return ({"input_word_ids": fix(ids), "input_mask": fix(mask), "input_type_ids": fix(types)},
            w_start, w_len, first, k)


def _best_spans(start_logits, end_logits, is_max, is_ctx, max_answer):
    """Per window [R]: the best span (flat index i * T + j into [T, T]) and its start + end
    logit (_NEG if the window has no allowed span)."""
    width = tf.shape(start_logits)[1]
    pos = tf.range(width)[None, :]
    ex = tf.expand_dims    # (a strided slice adding an axis to a bool tensor does not convert)
    span = ex(start_logits, 2) + ex(end_logits, 1)                    # [R, T, T]
    i3, j3 = ex(pos, 2), ex(pos, 1)
    ok = (j3 >= i3) & (j3 - i3 < max_answer) & ex(is_max, 2) & ex(is_ctx, 1)
    flat = tf.reshape(tf.where(ok, span, _NEG), [-1, width * width])  # [R, T*T]
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)
    best_score = tf.where(tf.reduce_any(tf.reshape(ok, [-1, width * width]), axis=-1),
                          tf.reduce_max(flat, axis=-1), _NEG)         # [R]
    return best, best_score


@register("squad")
def squad_graph(model, vocab, task, seq_length, tok):
    s = _squad_settings(task, seq_length)

    @tf.function(input_signature=[_spec("question"), _spec("context")])
    def serving_default(question, context):
        q = tok.with_offsets(question, "squad")["ids"][:s["max_query"]]
        c = tok.with_offsets(context, "squad")
        inputs, w_start, w_len, first, k = _squad_windows(
            q, c["ids"], seq_length, s["doc_stride"], tok.cls_id, tok.sep_id)
        out = model(inputs, training=False)
        start_logits, end_logits = out["start_logits"], out["end_logits"]    # [R, T]
        width = tf.shape(start_logits)[1]
        pos = tf.range(width)[None, :]
        j = pos - first                                                # [R, T]
        is_ctx = (j >= 0) & (j < w_len[:, None])
        # max context (the original): min(left, right) + 0.01 * len, first window on ties;
        # in integers: (100 * min + len) * 4096 - window
        score = ((tf.minimum(j, w_len[:, None] - 1 - j) * 100 + w_len[:, None]) * 4096
                 - k[:, None])
        token = tf.where(is_ctx, j + w_start[:, None], 0)
        n_tok = tf.size(c["ids"])
        best_ctx = tf.math.unsorted_segment_max(
            tf.reshape(score, [-1]), tf.reshape(tf.where(is_ctx, token, n_tok), [-1]),
            n_tok + 1)
        is_max = is_ctx & (score >= tf.gather(best_ctx, tf.where(is_ctx, token, n_tok)))
        valid = is_ctx | (tf.equal(pos, 0) & s["allow_null"])
        p_start = tf.nn.softmax(tf.where(valid, start_logits, _NEG), axis=-1)
        p_end = tf.nn.softmax(tf.where(valid, end_logits, _NEG), axis=-1)
        best, best_score = _best_spans(start_logits, end_logits, is_max, is_ctx,
                                       s["max_answer"])
        top = tf.reduce_max(best_score)
        rows = tf.range(tf.size(best_score))
        chosen = tf.reduce_min(tf.where(best_score >= top, rows, tf.size(rows)))
        null_score = tf.reduce_min(start_logits[:, 0] + end_logits[:, 0])
        answered = top > _NEG / 2
        if s["allow_null"]:
            answered = answered & (null_score - top <= s["threshold"])
        g = lambda x, i: tf.gather(x, i)  # noqa: E731  (dynamic scalar index: a gather)
        bi, bj = g(best, chosen) // width, g(best, chosen) % width
        piece_i = tf.maximum(bi - first + g(w_start, chosen), 0)
        piece_j = tf.maximum(bj - first + g(w_start, chosen), 0)
        n_safe = tf.maximum(n_tok - 1, 0)
        pad = tf.zeros([1], tf.int32)
        pick = lambda name, i: tf.gather(tf.concat([c[name], pad], 0),   # noqa: E731
                                         tf.minimum(i, n_safe))
        b_start = tf.where(answered, pick("byte_start", piece_i), 0)
        b_end = tf.where(answered, pick("byte_end", piece_j), 0)
        text = substrings(context, tf.reshape(b_start, [1]), tf.reshape(b_end, [1]))  # [1]
        ps, pe = g(p_start, chosen), g(p_end, chosen)                 # [T]
        prob = g(ps, bi) * g(pe, bj)
        null_prob = ps[0] * pe[0]
        return {"answer": text,
                "answer_start": tf.reshape(tf.where(answered, pick("char_start", piece_i),
                                                    -1), [1]),
                "answer_end": tf.reshape(tf.where(answered, pick("char_end", piece_j), -1),
                                         [1]),
                "score": tf.reshape(tf.where(answered, prob,
                                             null_prob if s["allow_null"] else 0.0), [1])}
    return ["question", "context"], serving_default


@register("multiple_choice")
def multiple_choice_graph(model, vocab, task, seq_length, tok):
    """context [1], choices [C] (or [1, C]; C = the model dir's num_choices, fixed in the
    graph) -> probabilities float32 [C], choice int32 [1]. Each `[CLS] context [SEP] choice_i
    [SEP]` is packed as the SavedModel's (longest-first) and padded to seq_length."""
    n_choices = int(task.get("num_choices") or 0)
    if n_choices < 1:
        raise ValueError(f"multiple_choice: task.num_choices {task.get('num_choices')!r}: "
                         f"expected an integer >= 1 (the graph's number of choices)")
    budget = seq_length - 3

    @tf.function(input_signature=[_spec("context"), _spec("choices")])
    def serving_default(context, choices):
        a = tok.ids(context)
        # C tokenizer copies: the tokenizer takes one string (a wrong count fails in RESHAPE)
        flat = tf.reshape(choices, [n_choices])                            # [C]
        rows = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
        for i in range(n_choices):
            # a gather (LiteRT's UNPACK and slices take no strings) -> string [1]
            ids, types = _pack_pair(a, tok.ids(tf.gather(flat, [i])), budget, tok)
            # T = seq_length, static (see _squad_windows); the mask hides the padding
            pad = [[0, seq_length - tf.size(ids)]]
            rows["input_word_ids"].append(tf.pad(ids, pad))
            rows["input_mask"].append(tf.pad(tf.ones_like(ids), pad))
            rows["input_type_ids"].append(tf.pad(types, pad))
        inputs = {k: tf.reshape(tf.stack(v), [1, n_choices, seq_length])    # [1, C, T]
                  for k, v in rows.items()}
        logits = model(inputs, training=False)["logits"]                     # [1, C]
        probs = tf.nn.softmax(logits, axis=-1)
        return {"probabilities": tf.reshape(probs, [n_choices]),
                "choice": tf.argmax(probs, axis=-1, output_type=tf.int32)}  # [1]
    return ["context", "choices"], serving_default
