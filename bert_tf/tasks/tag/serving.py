"""The tag SavedModel signature (Task.serving_signature): texts in, entities with character
offsets out.

    serving_default(text string [B]) -> entity_text, entity_type string [B, E],
        entity_start / entity_end int32 [B, E] (character offsets, end exclusive),
        entity_score float [B, E], num_entities int32 [B]; padding "" / -1 / 0.0

Texts longer than seq_length - 2 pieces are read in windows (bert_tf/serving_graph/windows.py,
within the export's request budget): every piece is labeled from the window
where it has the most context, a word by its first piece, and entities are decoded over the
whole text with the IOB2 rules of conlleval (`I-X` after `O` or another type starts X).

Shapes: B texts, P pieces of a text, N pieces of the batch, W words, E entities, C labels.
"""

import tensorflow as tf

from bert_tf.serving_graph import text as text_lib
from bert_tf.serving_graph import windows as windows_lib
from bert_tf.serving_graph.context import string_spec


def iob_tables(label_names):
    """IOB2 label names -> python lists (prefix code per label: 0 O, 1 B/S/U, 2 I; entity type
    id per label, -1 for O; the entity type names)."""
    types, prefix, type_ids = [], [], []
    for name in label_names:
        if name == "O" or "-" not in name:
            prefix.append(0)
            type_ids.append(-1)
            continue
        head, kind = name.split("-", 1)
        if kind not in types:
            types.append(kind)
        prefix.append(1 if head.upper() in ("B", "S", "U") else 2)
        type_ids.append(types.index(kind))
    return prefix, type_ids, types


def tag_pieces(ctx, pieces):
    """Every piece's predicted label and its probability [B, (P)], from the window (of
    seq_length - 2 pieces, one model batch) where the piece has the most context."""
    windows = ctx.split_windows(pieces, ctx.seq_length - 2, ctx.window_stride, "tag")
    probs = tf.nn.softmax(ctx.run_model(ctx.pack([windows.ids]))["logits"], axis=-1)  # [R, T, C]
    num_pieces = tf.shape(pieces.flat_values, out_type=tf.int64)[0]
    owned, token = windows_lib.owned_positions(
        windows, tf.ones_like(windows.example), tf.shape(probs)[1], num_pieces
    )
    pred = windows_lib.per_piece(
        tf.argmax(probs, -1, output_type=tf.int32), owned, token, num_pieces, -1
    )  # [N]
    prob = windows_lib.per_piece(tf.reduce_max(probs, -1), owned, token, num_pieces, -1.0)
    return (
        tf.RaggedTensor.from_row_splits(pred, pieces.row_splits),
        tf.RaggedTensor.from_row_splits(prob, pieces.row_splits),
    )


def build(ctx):
    """The text-in signature of a ServingContext holding a BertTagger."""
    prefix, type_ids, types = iob_tables(ctx.label_names)
    tables = (
        tf.constant(prefix, tf.int32),
        tf.constant(type_ids, tf.int32),
        tf.constant(types or [""]),
    )
    is_continuation = ctx.is_continuation  # [vocab] bool

    @tf.function(input_signature=[string_spec("text")])
    def serving_default(text):
        (checked,) = ctx.check_request("tag", text)
        clean, ids, starts, ends = ctx.tokenize(checked)
        pieces = tf.cast(ids, tf.int64)  # [B, (P)]
        piece_pred, piece_prob = tag_pieces(ctx, pieces)  # [B, (P)] each
        words = _words(
            pieces,
            is_continuation,
            text_lib.byte_to_char_offsets(clean, starts).flat_values,
            text_lib.byte_to_char_offsets(clean, ends).flat_values,
        )
        keep = words["first_piece"]
        entities = _entities(
            tf.boolean_mask(piece_pred.flat_values, keep),
            tf.boolean_mask(piece_prob.flat_values, keep),
            words,
            tables,
        )
        e_text = tf.strings.substr(
            tf.gather(clean, entities["row"]),
            tf.cast(entities["start"], tf.int32),
            tf.cast(entities["end"] - entities["start"], tf.int32),
            unit="UTF8_CHAR",
        )

        def by_row(values, default):
            ragged = tf.RaggedTensor.from_value_rowids(
                values, entities["row"], nrows=tf.cast(tf.shape(text)[0], tf.int64)
            )
            return ragged.to_tensor(default_value=default), ragged.row_lengths()

        ent_text, counts = by_row(e_text, "")
        return {
            "entity_text": ent_text,
            "entity_type": by_row(tf.gather(tables[2], entities["type"]), "")[0],
            "entity_start": by_row(tf.cast(entities["start"], tf.int32), -1)[0],
            "entity_end": by_row(tf.cast(entities["end"], tf.int32), -1)[0],
            "entity_score": by_row(entities["score"], 0.0)[0],
            "num_entities": tf.cast(counts, tf.int32),
        }

    return serving_default


def _words(pieces, is_continuation, char_starts, char_ends):
    """Words of the batch: a piece starts a word unless it is a "##" continuation (or the
    first of its text). -> first_piece bool [N]; row, char start, char end int64 [W]."""
    n_vocab = tf.size(is_continuation, out_type=tf.int64)
    is_cont = tf.gather(is_continuation, tf.minimum(pieces.flat_values, n_vocab - 1))  # [N]
    row_of_piece = pieces.value_rowids()  # [N]
    first_in_row = tf.concat([[True], row_of_piece[1:] != row_of_piece[:-1]], 0)
    word_start = tf.logical_or(tf.logical_not(is_cont), first_in_row)
    word_of_piece = tf.cumsum(tf.cast(word_start, tf.int64)) - 1  # [N]
    n_words = tf.reduce_sum(tf.cast(word_start, tf.int64))
    return {
        "first_piece": word_start,
        "row": tf.boolean_mask(row_of_piece, word_start),
        "start": tf.boolean_mask(char_starts, word_start),
        "end": tf.math.unsorted_segment_max(char_ends, word_of_piece, n_words),
    }


def _entities(w_pred, w_prob, words, tables):
    """Per word label id / probability [W] -> entities (conlleval rules; an entity never
    spans two texts): row, char start / end, type id int64 [E], score (mean over its words of
    the label's probability) [E]."""
    prefix_of, type_of, _ = tables
    w_prefix, w_type, w_row = tf.gather(prefix_of, w_pred), tf.gather(type_of, w_pred), words["row"]
    w_first = tf.concat([[True], w_row[1:] != w_row[:-1]], 0)
    prev_type = tf.where(w_first, -1, tf.concat([[-1], w_type[:-1]], 0))
    begins = (w_prefix == 1) | ((w_prefix == 2) & (prev_type != w_type))
    keep = begins | ((w_prefix == 2) & (prev_type == w_type))
    n_ent = tf.reduce_sum(tf.cast(begins, tf.int64))
    seg = tf.boolean_mask(tf.cumsum(tf.cast(begins, tf.int64)) - 1, keep)

    def per_entity(fn, values):
        return fn(tf.boolean_mask(values, keep), seg, n_ent)

    return {
        "row": per_entity(tf.math.unsorted_segment_min, w_row),
        "start": per_entity(tf.math.unsorted_segment_min, words["start"]),
        "end": per_entity(tf.math.unsorted_segment_max, words["end"]),
        "type": per_entity(tf.math.unsorted_segment_max, w_type),
        "score": per_entity(tf.math.unsorted_segment_mean, w_prob),
    }
