"""The tag TFLite graph (Task.tflite_graph), batch 1, the SavedModel's outputs:

    text string [1] -> entity_text / entity_type string [E], entity_start / entity_end int32
        [E] (character offsets, end exclusive), entity_score float32 [E], num_entities [1]

Long texts in windows (seq_length - 2 pieces, task.doc_stride apart, one model batch): every
piece labeled from its max-context window, a word by its first piece, entities decoded over the
whole text with the SavedModel's IOB2 rules (serving.py), in ops LiteRT runs.

Shapes: P pieces, T packed length, C labels, W words, E entities, R windows.
"""

import tensorflow as tf

from bert_tf.serving_graph.context import string_spec
from bert_tf.serving_graph.tflite_text import substrings
from bert_tf.serving_graph.tflite_windows import owned_positions, per_piece
from bert_tf.tasks.tag.serving import iob_tables


def _label_tables(label_names):
    """IOB2 names -> (prefix [C]; type id [C]; type names + [""]; number of types), the
    SavedModel's rules (serving.iob_tables)."""
    prefix, type_ids, types = iob_tables(label_names)
    return (
        tf.constant(prefix, tf.int32),
        tf.constant(type_ids, tf.int32),
        tf.constant(types + [""]),
        len(types),
    )


def _mask(values, keep):
    return tf.gather(values, tf.cast(tf.where(keep)[:, 0], tf.int32))


def _tag_pieces(ctx, ids, stride):
    """ids int32 [P] -> (label id int32 [P], its probability float32 [P]) of every piece, from
    the window (seq_length - 2 pieces, `stride` apart) where it has the most context."""
    inputs, win = ctx.pack_windows([ctx.tokenizer.cls_id], ids, ctx.seq_length - 2, stride)
    probs = tf.nn.softmax(ctx.run_model(inputs)["logits"], axis=-1)  # [R, T, C]
    p = tf.size(ids)
    _, token, is_max = owned_positions(win, tf.shape(inputs["input_word_ids"])[1], p)
    pred = per_piece(tf.argmax(probs, axis=-1, output_type=tf.int32), is_max, token, p, -1)
    return pred, per_piece(tf.reduce_max(probs, axis=-1), is_max, token, p, -1.0)


def _words(t, tok):
    """Tokenizer output (dict of [P]) -> (word_start bool [P]: a piece starts a word unless it
    is a "##" continuation (or the first piece); per word [W]: char / byte start and end)."""
    ids = t["ids"]
    p = tf.size(ids)
    word_start = tf.logical_not(tf.gather(tok.is_continuation, ids)) | tf.equal(tf.range(p), 0)
    word_of_piece = tf.math.cumsum(tf.cast(word_start, tf.int32)) - 1
    n_words = tf.reduce_sum(tf.cast(word_start, tf.int32))
    ends = {
        k: tf.math.unsorted_segment_max(t[k], word_of_piece, n_words)
        for k in ("char_end", "byte_end")
    }
    return word_start, {
        "char_start": _mask(t["char_start"], word_start),
        "byte_start": _mask(t["byte_start"], word_start),
        **ends,
    }


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

    first = {
        k: per_entity(tf.math.unsorted_segment_min, words[k]) for k in ("char_start", "byte_start")
    }
    last = {k: per_entity(tf.math.unsorted_segment_max, words[k]) for k in ("char_end", "byte_end")}
    e_type = per_entity(tf.math.unsorted_segment_max, w_type)
    e_score = per_entity(tf.math.unsorted_segment_sum, w_prob) / tf.cast(
        per_entity(tf.math.unsorted_segment_sum, tf.ones_like(w_type)), tf.float32
    )
    pad = tf.zeros([tf.maximum(1 - n_ent, 0)], tf.int32)
    e_text = substrings(
        text, tf.concat([first["byte_start"], pad], 0), tf.concat([last["byte_end"], pad], 0)
    )  # [E']
    return {
        "entity_text": e_text,
        "entity_type": tf.gather(type_names, tf.concat([e_type, pad + n_types], 0)),
        "entity_start": tf.concat([first["char_start"], pad - 1], 0),
        "entity_end": tf.concat([last["char_end"], pad - 1], 0),
        "entity_score": tf.concat([e_score, tf.cast(pad, tf.float32)], 0),
        "num_entities": tf.reshape(n_ent, [1]),
    }


def build(ctx):
    """-> (input names, tf.function) for a TFLiteContext. Long texts in windows
    (seq_length - 2 pieces, task.doc_stride apart, default half a window): every piece
    labeled from its max-context window, words by their first piece, entities over the whole
    text (never cut at a window border), offsets into the text."""
    tok = ctx.tokenizer
    tables = _label_tables(ctx.label_names)
    stride = ctx.window_stride

    @tf.function(input_signature=[string_spec("text")])
    def serving_default(text):
        t = tok.with_offsets(text, "tag")
        pred, prob = _tag_pieces(ctx, t["ids"], stride)  # [P]
        word_start, words = _words(t, tok)
        return _entities(text, words, _mask(pred, word_start), _mask(prob, word_start), tables)

    return ["text"], serving_default
