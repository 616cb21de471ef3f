"""Batch-1 TFLite graphs of each task: strings in, decoded answers out (registry by task type).

Every graph tokenizes in the graph (export.tflite_text: the exact original BERT tokenizer by
default, or tf.text's FastBertTokenizer), runs the model and decodes as the SavedModel's
serving_default does (export/serving_graph.py), with ops LiteRT runs (builtins + tf.text's
TFLite kernels). Inputs longer than one window (single-text classify, tag, squad) are read in
`doc_stride` windows padded to seq_length, all in one model batch (export/tflite_windows.py),
with the SavedModel's rules: classify averages the window logits, tag and squad take each
piece from its max-context window. Inputs are string [1]; a batch of two or
more strings fails at run time (export.tflite.TFLiteModel answers lists row by row).

A task plugs in with `register("type")` on a function (model, vocab, task, seq_length,
tokenizer) -> (input names, tf.function over string [1] inputs).

Shapes: P pieces, T packed length, C labels, W words, E entities, R windows.
"""

import tensorflow as tf

from export.serving_squad import squad_settings
from export.serving_tag import iob_tables
from export.serving_windows import single_text_stride
from export.tflite_text import TFLiteBertTokenizer, fast_bert_tokenize, substrings
from export.tflite_windows import owned_positions, pack_windows, per_piece

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
    """The SavedModel's classify outputs: probabilities [1, C], label string [1], label_id
    int32 [1]; a regression model (task.regression) answers score float32 [1]."""
    pair = bool(task.get("text_b"))
    names = tf.constant([str(x) for x in task.get("label_names") or []]
                        or [str(i) for i in range(model.num_classes)])

    def answer(logits):                                               # [1, C]
        if task.get("regression"):
            return {"score": logits[:, 0]}
        probs = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(probs, axis=-1, output_type=tf.int32)
        return {"probabilities": probs, "label": tf.gather(names, label_id),
                "label_id": label_id}

    if pair:   # longest-first truncation, as fine-tuning and the SavedModel (no windows)
        @tf.function(input_signature=[_spec("text"), _spec("text_b")])
        def serving_default(text, text_b):
            ids, types = _pack_pair(tok.ids(text), tok.ids(text_b), seq_length - 3, tok)
            return answer(_encode(model, ids, types)["logits"])
        return ["text", "text_b"], serving_default

    stride = single_text_stride(task, seq_length)

    @tf.function(input_signature=[_spec("text")])
    def serving_default(text):
        # every window of seq_length - 2 pieces; the mean of the window logits
        inputs, _ = pack_windows([tok.cls_id], tok.ids(text), seq_length - 2, stride,
                                 seq_length, tok.sep_id)
        logits = model(inputs, training=False)["logits"]                # [R, C]
        return answer(tf.reduce_mean(logits, axis=0, keepdims=True))
    return ["text"], serving_default


def _label_tables(label_names):
    """IOB2 names -> (prefix [C]; type id [C]; type names + [""]; number of types), the
    SavedModel's rules (export.serving_tag.iob_tables)."""
    prefix, type_ids, types = iob_tables(label_names)
    return (tf.constant(prefix, tf.int32), tf.constant(type_ids, tf.int32),
            tf.constant(types + [""]), len(types))


def _mask(values, keep):
    return tf.gather(values, tf.cast(tf.where(keep)[:, 0], tf.int32))


def _tag_pieces(model, ids, seq_length, stride, tok):
    """ids int32 [P] -> (label id int32 [P], its probability float32 [P]) of every piece, from
    the window (seq_length - 2 pieces, `stride` apart) where it has the most context."""
    inputs, win = pack_windows([tok.cls_id], ids, seq_length - 2, stride, seq_length,
                               tok.sep_id)
    probs = tf.nn.softmax(model(inputs, training=False)["logits"], axis=-1)   # [R, T, C]
    p = tf.size(ids)
    _, token, is_max = owned_positions(win, tf.shape(inputs["input_word_ids"])[1], p)
    pred = per_piece(tf.argmax(probs, axis=-1, output_type=tf.int32), is_max, token, p, -1)
    return pred, per_piece(tf.reduce_max(probs, axis=-1), is_max, token, p, -1.0)


def _words(t, tok):
    """Tokenizer output (dict of [P]) -> (word_start bool [P]: a piece starts a word unless it
    is a "##" continuation (or the first piece); per word [W]: char / byte start and end)."""
    ids = t["ids"]
    p = tf.size(ids)
    word_start = (tf.logical_not(tf.gather(tok.is_continuation, ids))
                  | tf.equal(tf.range(p), 0))
    word_of_piece = tf.math.cumsum(tf.cast(word_start, tf.int32)) - 1
    n_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
    ends = {k: tf.math.unsorted_segment_max(t[k], word_of_piece, n_words)
            for k in ("char_end", "byte_end")}
    return word_start, {"char_start": _mask(t["char_start"], word_start),
                        "byte_start": _mask(t["byte_start"], word_start), **ends}


def _entities(text, words, w_pred, w_prob, tables):
    """Per word label ids / probabilities [W] -> the entity outputs (IOB2, conlleval: I-X
    after O or another type starts X), at least one row (LiteRT has no empty string tensor:
    no entity -> one padding row "", "", -1, -1, 0.0 and num_entities 0, as the SavedModel
    pads its [B, E] outputs)."""
    prefix_of, type_of, type_names, n_types = tables
    w_prefix, w_type = tf.gather(prefix_of, w_pred), tf.gather(type_of, w_pred)
    prev_type = tf.concat([[-1], w_type], 0)[:-1]
    begins = tf.equal(w_prefix, 1) | (tf.equal(w_prefix, 2) & tf.not_equal(prev_type, w_type))
    keep = begins | (tf.equal(w_prefix, 2) & tf.equal(prev_type, w_type))
    n_ent = tf.reduce_sum(tf.cast(begins, tf.int32))
    seg = _mask(tf.math.cumsum(tf.cast(begins, tf.int32)) - 1, keep)

    def per_entity(fn, values):
        return fn(_mask(values, keep), seg, n_ent)
    first = {k: per_entity(tf.math.unsorted_segment_min, words[k])
             for k in ("char_start", "byte_start")}
    last = {k: per_entity(tf.math.unsorted_segment_max, words[k])
            for k in ("char_end", "byte_end")}
    e_type = per_entity(tf.math.unsorted_segment_max, w_type)
    e_score = (per_entity(tf.math.unsorted_segment_sum, w_prob)
               / tf.cast(per_entity(tf.math.unsorted_segment_sum, tf.ones_like(w_type)),
                         tf.float32))
    pad = tf.zeros([tf.maximum(1 - n_ent, 0)], tf.int32)
    e_text = substrings(text, tf.concat([first["byte_start"], pad], 0),
                        tf.concat([last["byte_end"], pad], 0))                  # [E']
    return {"entity_text": e_text,
            "entity_type": tf.gather(type_names, tf.concat([e_type, pad + n_types], 0)),
            "entity_start": tf.concat([first["char_start"], pad - 1], 0),
            "entity_end": tf.concat([last["char_end"], pad - 1], 0),
            "entity_score": tf.concat([e_score, tf.cast(pad, tf.float32)], 0),
            "num_entities": tf.reshape(n_ent, [1])}


@register("tag")
def tag_graph(model, vocab, task, seq_length, tok):
    """Long texts in windows (seq_length - 2 pieces, task.doc_stride apart, default half a
    window): every piece labeled from its max-context window, words by their first piece,
    entities over the whole text (never cut at a window border), offsets into the text."""
    tables = _label_tables([str(x) for x in task["label_names"]])
    stride = single_text_stride(task, seq_length)

    @tf.function(input_signature=[_spec("text")])
    def serving_default(text):
        t = tok.with_offsets(text, "tag")
        pred, prob = _tag_pieces(model, t["ids"], seq_length, stride, tok)      # [P]
        word_start, words = _words(t, tok)
        return _entities(text, words, _mask(pred, word_start), _mask(prob, word_start),
                         tables)
    return ["text"], serving_default


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


def _squad_answer(out, win, n_tok, s):
    """Model outputs over the windows -> (chosen window, span positions i, j in it, answered?,
    probability of the answer / of no answer), as the SavedModel decodes."""
    start_logits, end_logits = out["start_logits"], out["end_logits"]      # [R, T]
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
    ps, pe = g(p_start, chosen), g(p_end, chosen)                     # [T]
    return chosen, bi, bj, answered, g(ps, bi) * g(pe, bj), ps[0] * pe[0]


@register("squad")
def squad_graph(model, vocab, task, seq_length, tok):
    s = squad_settings(task, seq_length)

    @tf.function(input_signature=[_spec("question"), _spec("context")])
    def serving_default(question, context):
        q = tok.with_offsets(question, "squad")["ids"][:s["max_query"]]
        c = tok.with_offsets(context, "squad")
        # [CLS] q [SEP] window [SEP] for every doc_stride window of the context pieces
        inputs, win = pack_windows(tf.concat([[tok.cls_id], q, [tok.sep_id]], 0), c["ids"],
                                   seq_length - tf.size(q) - 3, s["doc_stride"], seq_length,
                                   tok.sep_id, second_type=1)
        n_tok = tf.size(c["ids"])
        chosen, bi, bj, answered, prob, null_prob = _squad_answer(
            model(inputs, training=False), win, n_tok, s)
        w_start = tf.gather(win.start, chosen)
        piece_i = tf.maximum(bi - win.first + w_start, 0)
        piece_j = tf.maximum(bj - win.first + w_start, 0)
        n_safe = tf.maximum(n_tok - 1, 0)
        pad = tf.zeros([1], tf.int32)
        pick = lambda name, i: tf.gather(tf.concat([c[name], pad], 0),   # noqa: E731
                                         tf.minimum(i, n_safe))
        b_start = tf.where(answered, pick("byte_start", piece_i), 0)
        b_end = tf.where(answered, pick("byte_end", piece_j), 0)
        text = substrings(context, tf.reshape(b_start, [1]), tf.reshape(b_end, [1]))  # [1]
        offset = lambda name, i: tf.reshape(  # noqa: E731
            tf.where(answered, pick(name, i), -1), [1])
        return {"answer": text, "answer_start": offset("char_start", piece_i),
                "answer_end": offset("char_end", piece_j),
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
            # T = seq_length, static (see export/tflite_windows.py); the mask hides the padding
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
