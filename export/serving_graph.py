"""The serving tf.Module of a task model: raw strings in, answers out, all in the graph.

Signatures (see export/README.md for the full tensor layout):
  classify  serving_default(text [, text_b]) -> probabilities float [B, C], label string [B],
            label_id int32 [B]; regression models (task.regression): score float [B]
            single texts longer than seq_length - 2 pieces: the mean of the logits of their
            windows (export/serving_windows.py, `doc_stride` apart), as fine-tuning evaluates
  tag       serving_default(text) -> entity_text string [B, E], entity_type string [B, E],
            entity_start / entity_end int32 [B, E] (character offsets, end exclusive),
            entity_score float [B, E], num_entities int32 [B]; padding "" / -1 / 0.0; long
            texts in windows, each piece labeled from its max-context window
  squad     serving_default(question, context) -> answer string [B], answer_start /
            answer_end int32 [B] (character offsets into context, -1 for no answer),
            score float [B]; long contexts are read in `doc_stride` windows, at most
            `max_windows` (export.saved_model --max_windows_per_request) per request, else
            INVALID_ARGUMENT
  multiple_choice
            serving_default(context [B], choices [B, C]) -> probabilities float [B, C],
            choice int32 [B] (export/serving_choice.py)
  every     serving_encoded(input_word_ids, input_mask, input_type_ids int32 [B, T];
            [B, C, T] for multiple_choice) -> the raw model outputs (+ probabilities for
            classify/tag/multiple_choice); ids outside the embeddings (negative, >= vocab /
            type vocab), a mask other than 0/1 or T over max_position_embeddings are
            INVALID_ARGUMENT

Shape legend: B = batch, T = packed length, C = classes / labels, W = words, E = entities.
"""

import tensorflow as tf

from export import serving_choice, serving_windows, text_graph
from export.saved_model import hold_keras_layer

ENCODED_SIGNATURE = "serving_encoded"
# task type -> the ServingModule method that builds its serving_default signature
SIGNATURES = {"classify": "_classify_fn", "tag": "_tag_fn", "squad": "_squad_fn",
              "multiple_choice": "_multiple_choice_fn"}
_NEG = -1e9


def _string_spec(name):
    return tf.TensorSpec([None], tf.string, name=name)


_ENCODED_SPECS = {name: tf.TensorSpec([None, None], tf.int32, name=name)
                  for name in ("input_word_ids", "input_mask", "input_type_ids")}
DEFAULT_MAX_WINDOWS = 64   # SQuAD windows one request may cause (see _squad_fn)


def check_encoded_inputs(inputs, config):
    """Refuses ids the embeddings do not hold: Keras' embedding lookup wraps a negative id
    around (-1 = the last row) instead of failing, so without this a negative id would answer
    silently. Returns the inputs, made to depend on the checks (INVALID_ARGUMENT on failure)."""
    checks = []
    for name, limit in (("input_word_ids", config.vocab_size),
                        ("input_type_ids", config.type_vocab_size)):
        ids = inputs[name]
        checks.append(tf.debugging.Assert(
            tf.reduce_all((ids >= 0) & (ids < limit)),
            [f"serving_encoded: {name} must be in [0, {limit}); got values from",
             tf.reduce_min(ids), "to", tf.reduce_max(ids)], summarize=1))
    mask = inputs["input_mask"]
    checks.append(tf.debugging.Assert(
        tf.reduce_all((mask == 0) | (mask == 1)),
        ["serving_encoded: input_mask must be 0 or 1"]))
    length = tf.shape(inputs["input_word_ids"])[-1]                # T ([B, T] or [B, C, T])
    checks.append(tf.debugging.Assert(
        length <= config.max_position_embeddings,
        [f"serving_encoded: sequence length must be at most {config.max_position_embeddings} "
         f"(max_position_embeddings); got", length]))
    with tf.control_dependencies(checks):
        return {k: tf.identity(v) for k, v in inputs.items()}


class ServingModule(tf.Module):
    """Holds the Keras task model, the tokenizer and the label names."""

    max_windows = DEFAULT_MAX_WINDOWS   # SQuAD: windows per request (_limit_windows)

    def __init__(self, model, task, vocab_file, lower_case, seq_length, pad_to_longest=True):
        super().__init__()
        # The Keras model stays untracked; its tf.Variables are what the SavedModel restores.
        self.model_variables = hold_keras_layer(self, "model", model)
        self.task = dict(task)
        self.seq_length = int(seq_length)
        self.pad_to_longest = bool(pad_to_longest)
        vocab = text_graph.read_vocab(vocab_file)
        self.cls_id = vocab.index(text_graph.CLS)
        self.sep_id = vocab.index(text_graph.SEP)
        self.tokenizer = text_graph.make_tokenizer(vocab_file, lower_case)
        self._vocab_is_continuation = tf.constant([t.startswith("##") for t in vocab])
        self.label_names = [str(x) for x in task.get("label_names", [])]

    # ---- shared pieces --------------------------------------------------------------
    def _run_model(self, inputs):
        return self.model(inputs, training=False)

    def _tokenize(self, text):
        clean = text_graph.clean_utf8(text)
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(clean)
        return clean, ids, starts, ends

    def _pack(self, segments, trimmer="longest_first"):
        return text_graph.pack(segments, self.seq_length, self.cls_id, self.sep_id,
                               self.pad_to_longest, trimmer)

    def encoded_fn(self, specs=None):
        @tf.function(input_signature=[specs or _ENCODED_SPECS])
        def serving_encoded(inputs):
            inputs = check_encoded_inputs(inputs, self.model.encoder.config)
            outputs = dict(self._run_model(inputs))
            if "logits" in outputs:
                outputs["probabilities"] = tf.nn.softmax(outputs["logits"], axis=-1)
            return outputs
        return serving_encoded

    def signatures(self):
        """{"serving_default": the task's text-in signature (SIGNATURES), "serving_encoded"}."""
        build = getattr(self, SIGNATURES[self.task["type"]])
        specs = serving_choice.ENCODED_SPECS if self.task["type"] == "multiple_choice" else None
        return {"serving_default": build(), ENCODED_SIGNATURE: self.encoded_fn(specs)}

    def _multiple_choice_fn(self):
        return serving_choice.multiple_choice_fn(self)

    # ---- classify -------------------------------------------------------------------
    def _classify_fn(self):
        names = tf.constant(self.label_names or
                            [str(i) for i in range(self.model.num_classes)])
        pair = bool(self.task.get("text_b"))

        regression = bool(self.task.get("regression"))

        def answer(segments):
            inputs, _ = self._pack(segments)
            return answer_from_logits(self._run_model(inputs)["logits"])  # [B, C]

        def answer_from_logits(logits):
            if regression:
                return {"score": logits[:, 0]}
            probs = tf.nn.softmax(logits, axis=-1)
            label_id = tf.argmax(probs, axis=-1, output_type=tf.int32)   # [B]
            return {"probabilities": probs, "label": tf.gather(names, label_id),
                    "label_id": label_id}

        if pair:
            @tf.function(input_signature=[_string_spec("text"), _string_spec("text_b")])
            def serving_default(text, text_b):
                a = self._tokenize(text)[1]
                b = self._tokenize(text_b)[1]
                return answer([a, b])
        else:
            @tf.function(input_signature=[_string_spec("text")])
            def serving_default(text):
                # long texts: every window of seq_length - 2 pieces, the mean of the
                # window logits (as the fine-tuning evaluation)
                windows = serving_windows.split_windows(self._tokenize(text)[1],
                                                        self.seq_length - 2, self._stride())
                inputs, _ = self._pack([windows.ids])
                logits = self._run_model(inputs)["logits"]                   # [R, C]
                logits = tf.math.unsorted_segment_mean(
                    logits, windows.example, tf.shape(text, out_type=tf.int64)[0])  # [B, C]
                return answer_from_logits(logits)
        return serving_default

    # ---- tag ------------------------------------------------------------------------
    def _label_tables(self):
        """IOB2 label names -> (prefix code [C]: 0 O, 1 B, 2 I; type id [C]; type names)."""
        prefix, type_ids, types = iob_tables(self.label_names)
        return (tf.constant(prefix, tf.int32), tf.constant(type_ids, tf.int32),
                tf.constant(types or [""]))

    def _stride(self):
        """Window stride of tag / classify (task.doc_stride, else half a window)."""
        window = self.seq_length - 2
        return min(int(self.task.get("doc_stride") or max(1, window // 2)), window)

    def _tag_pieces(self, pieces):
        """Every piece's predicted label and its probability [B, (P)], from the window (of
        seq_length - 2 pieces, one model batch) where the piece has the most context."""
        windows = serving_windows.split_windows(pieces, self.seq_length - 2, self._stride())
        inputs, _ = self._pack([windows.ids])
        probs = tf.nn.softmax(self._run_model(inputs)["logits"], axis=-1)  # [R, T, C]
        num_pieces = tf.shape(pieces.flat_values, out_type=tf.int64)[0]
        owned, token = serving_windows.owned_positions(
            windows, tf.ones_like(windows.example), tf.shape(probs)[1], num_pieces)
        pred = serving_windows.per_piece(tf.argmax(probs, -1, output_type=tf.int32), owned,
                                         token, num_pieces, -1)           # [N]
        prob = serving_windows.per_piece(tf.reduce_max(probs, -1), owned, token, num_pieces,
                                         -1.0)
        return (tf.RaggedTensor.from_row_splits(pred, pieces.row_splits),
                tf.RaggedTensor.from_row_splits(prob, pieces.row_splits))

    def _tag_fn(self):
        prefix_of, type_of, type_names = self._label_tables()

        @tf.function(input_signature=[_string_spec("text")])
        def serving_default(text):
            clean, ids, starts, ends = self._tokenize(text)
            pieces = tf.cast(ids, tf.int64)                                # [B, (P)]
            piece_pred, piece_prob = self._tag_pieces(pieces)              # [B, (P)] each
            batch = tf.shape(text)[0]
            char_starts = text_graph.byte_to_char_offsets(clean, starts)
            char_ends = text_graph.byte_to_char_offsets(clean, ends)
            # Words: a piece starts a word unless it is a "##" continuation.
            n_vocab = tf.size(self._vocab_is_continuation, out_type=tf.int64)
            is_cont = tf.gather(self._vocab_is_continuation,
                                tf.minimum(tf.cast(pieces.flat_values, tf.int64),
                                           n_vocab - 1))                    # [N]
            row_of_piece = pieces.value_rowids()                           # [N]
            first_in_row = tf.concat([[True], row_of_piece[1:] != row_of_piece[:-1]], 0)
            word_start = tf.logical_or(tf.logical_not(is_cont), first_in_row)
            word_of_piece = tf.cumsum(tf.cast(word_start, tf.int64)) - 1   # [N]
            n_words = tf.reduce_sum(tf.cast(word_start, tf.int64))
            w_pred = tf.boolean_mask(piece_pred.flat_values, word_start)   # [W]
            w_prob = tf.boolean_mask(piece_prob.flat_values, word_start)
            w_row = tf.boolean_mask(row_of_piece, word_start)
            w_start = tf.boolean_mask(char_starts.flat_values, word_start)
            w_end = tf.math.unsorted_segment_max(char_ends.flat_values, word_of_piece,
                                                 n_words)
            # IOB2 -> entities (conlleval rules: I-X after O or another type starts X).
            w_prefix = tf.gather(prefix_of, w_pred)
            w_type = tf.gather(type_of, w_pred)
            w_first = tf.concat([[True], w_row[1:] != w_row[:-1]], 0)
            prev_type = tf.concat([[-1], w_type[:-1]], 0)
            prev_type = tf.where(w_first, -1, prev_type)
            begins = (w_prefix == 1) | ((w_prefix == 2) & (prev_type != w_type))
            inside = (w_prefix == 2) & (prev_type == w_type)
            keep = begins | inside
            ent_of_word = tf.cumsum(tf.cast(begins, tf.int64)) - 1
            n_ent = tf.reduce_sum(tf.cast(begins, tf.int64))
            seg = tf.boolean_mask(ent_of_word, keep)

            def per_entity(fn, values):
                return fn(tf.boolean_mask(values, keep), seg, n_ent)

            e_start = per_entity(tf.math.unsorted_segment_min, w_start)
            e_end = per_entity(tf.math.unsorted_segment_max, w_end)
            e_row = per_entity(tf.math.unsorted_segment_min, w_row)
            e_type = per_entity(tf.math.unsorted_segment_max, w_type)
            e_score = per_entity(tf.math.unsorted_segment_mean, w_prob)
            e_text = tf.strings.substr(tf.gather(clean, e_row), tf.cast(e_start, tf.int32),
                                       tf.cast(e_end - e_start, tf.int32), unit="UTF8_CHAR")

            def by_row(values, default):
                ragged = tf.RaggedTensor.from_value_rowids(values, e_row,
                                                           nrows=tf.cast(batch, tf.int64))
                return ragged.to_tensor(default_value=default), ragged.row_lengths()

            ent_text, counts = by_row(e_text, "")
            return {
                "entity_text": ent_text,
                "entity_type": by_row(tf.gather(type_names, e_type), "")[0],
                "entity_start": by_row(tf.cast(e_start, tf.int32), -1)[0],
                "entity_end": by_row(tf.cast(e_end, tf.int32), -1)[0],
                "entity_score": by_row(e_score, 0.0)[0],
                "num_entities": tf.cast(counts, tf.int32),
            }
        return serving_default

    # ---- squad ----------------------------------------------------------------------
    def _squad_fn(self):
        """Question answering over contexts of any length, as the fine-tuning evaluation
        decodes: the context is cut into windows `doc_stride` pieces apart (each packed as
        [CLS] question [SEP] window [SEP]), all windows run as one batch, a span may start
        only where its token has its maximum context, and the best span (start + end logit)
        over the example's windows wins; the null score is the smallest [CLS] score of its
        windows (version 2: no answer iff null - best > null_score_diff_threshold).

        Shapes: B examples, R windows (all examples), T packed length, L = max window."""
        task = self.task
        max_answer = int(task.get("max_answer_length", 30))
        max_query = min(int(task.get("max_query_length", 64)), self.seq_length - 4)
        doc_stride = max(int(task.get("doc_stride", 128)), 1)
        allow_null = bool(task.get("version_2_with_negative", task.get("version_2", False)))
        null_threshold = float(task.get("null_score_diff_threshold") or 0.0)
        seq_length = self.seq_length

        @tf.function(input_signature=[_string_spec("question"), _string_spec("context")])
        def serving_default(question, context):
            _, q_ids, _, _ = self._tokenize(question)
            clean, c_ids, c_starts, c_ends = self._tokenize(context)
            q_ids = q_ids[:, :max_query]
            n_q = q_ids.row_lengths()                                      # [B]
            n_c = c_ids.row_lengths()                                      # [B]
            window = seq_length - n_q - 3                                  # [B] >= 1
            stride = tf.minimum(window, doc_stride)
            # windows per example: 1 + ceil((C - window) / stride) (the original rule)
            extra = tf.maximum(n_c - window, 0)
            n_w = 1 + (extra + stride - 1) // stride                       # [B]
            n_w = _limit_windows(n_w, self.max_windows)
            example = tf.repeat(tf.range(tf.size(n_w, out_type=tf.int64)), n_w)  # [R]
            k = tf.ragged.range(n_w).flat_values                           # [R] window index
            w_start = k * tf.gather(stride, example)                       # [R] first piece
            w_len = tf.minimum(tf.gather(n_c, example) - w_start,
                               tf.gather(window, example))                 # [R] (>= 0)
            # the window's pieces, gathered from the flat context pieces
            flat_begin = tf.gather(c_ids.row_starts(), example) + w_start  # [R]
            flat_index = tf.ragged.range(flat_begin, flat_begin + w_len)   # [R, (L)]
            w_ids = tf.gather(c_ids.flat_values, flat_index)               # [R, (L)]
            inputs, _ = self._pack([tf.gather(q_ids, example), w_ids], trimmer="waterfall")
            out = self._run_model(inputs)
            start_logits, end_logits = out["start_logits"], out["end_logits"]  # [R, T]
            width = tf.shape(start_logits)[1]
            pos = tf.range(width, dtype=tf.int64)[None, :]                 # [1, T]
            first_ctx = tf.gather(n_q, example) + 2                        # [R]
            j = pos - first_ctx[:, None]                                   # [R, T] in window
            is_ctx = (j >= 0) & (j < w_len[:, None])
            # max context: score min(left, right) + 0.01 * len, the first window wins ties
            lens = tf.cast(w_len[:, None], tf.float64)
            jf = tf.cast(j, tf.float64)
            context_score = (tf.minimum(jf, lens - 1.0 - jf) + 0.01 * lens
                             - 1e-4 * tf.cast(k[:, None], tf.float64))     # [R, T]
            token = tf.where(is_ctx, flat_begin[:, None] + j, 0)           # [R, T] flat piece
            num_pieces = tf.shape(c_ids.flat_values, out_type=tf.int64)[0]
            segment = tf.where(is_ctx, token, num_pieces)                  # sink: non-context
            best_context = tf.math.unsorted_segment_max(
                tf.reshape(context_score, [-1]), tf.reshape(segment, [-1]), num_pieces + 1)
            is_max = is_ctx & (context_score >= tf.gather(best_context, segment))
            valid = is_ctx | ((pos == 0) & allow_null)
            neg = tf.fill(tf.shape(start_logits), _NEG)
            p_start = tf.nn.softmax(tf.where(valid, start_logits, neg), axis=-1)  # [R, T]
            p_end = tf.nn.softmax(tf.where(valid, end_logits, neg), axis=-1)
            span = start_logits[:, :, None] + end_logits[:, None, :]      # [R, T, T]
            band = tf.linalg.band_part(tf.ones([width, width], tf.bool), 0,
                                       tf.minimum(max_answer - 1, width - 1))
            ok = band[None] & is_max[:, :, None] & is_ctx[:, None, :]     # [R, T, T]
            span = tf.where(ok, span, tf.fill(tf.shape(span), _NEG))
            flat = tf.reshape(span, [-1, width * width])                   # [R, T*T]
            best = tf.argmax(flat, axis=-1, output_type=tf.int32)          # [R]
            best_score = tf.where(tf.reduce_any(ok, axis=[1, 2]),
                                  tf.reduce_max(flat, axis=-1), _NEG)       # [R]
            i_pos, j_pos = best // width, best % width                     # [R] positions
            # per example: the window with the best span; the smallest null score
            n_examples = tf.size(n_w)
            best_window_score = tf.math.unsorted_segment_max(best_score, example,
                                                             n_examples)   # [B]
            row = tf.range(tf.size(example, out_type=tf.int64))
            is_best = best_score >= tf.gather(best_window_score, example)
            chosen = tf.math.unsorted_segment_min(
                tf.where(is_best, row, tf.size(example, out_type=tf.int64)), example,
                n_examples)                          # [B] window row (every example has one)
            null_rows = start_logits[:, 0] + end_logits[:, 0]              # [R]
            null_score = tf.math.unsorted_segment_min(null_rows, example, n_examples)
            has_span = best_window_score > _NEG / 2
            answered = has_span
            if allow_null:   # the original: no answer iff null - best > threshold
                answered = answered & (null_score - best_window_score <= null_threshold)

            def pick(values):                                              # [R] -> [B]
                return tf.gather(values, chosen)
            i_b, j_b = tf.cast(pick(i_pos), tf.int64), tf.cast(pick(j_pos), tf.int64)
            piece_i = tf.maximum(i_b - pick(first_ctx) + pick(w_start), 0)  # [B] context piece
            piece_j = tf.maximum(j_b - pick(first_ctx) + pick(w_start), 0)
            b_start = _gather_rows(c_starts.to_tensor(default_value=0), piece_i)
            b_end = _gather_rows(c_ends.to_tensor(default_value=0), piece_j)
            ch_start = text_graph.byte_to_char_offsets(
                clean, tf.RaggedTensor.from_tensor(b_start[:, None])).flat_values
            ch_end = text_graph.byte_to_char_offsets(
                clean, tf.RaggedTensor.from_tensor(b_end[:, None])).flat_values
            p_start_b, p_end_b = tf.gather(p_start, chosen), tf.gather(p_end, chosen)
            score = _gather_rows(p_start_b, i_b) * _gather_rows(p_end_b, j_b)
            null_prob = p_start_b[:, 0] * p_end_b[:, 0]
            ch_start = tf.where(answered, ch_start, -1)
            ch_end = tf.where(answered, ch_end, -1)
            text = tf.strings.substr(clean, tf.cast(tf.maximum(ch_start, 0), tf.int32),
                                     tf.cast(tf.maximum(ch_end - ch_start, 0), tf.int32),
                                     unit="UTF8_CHAR")
            text = tf.where(answered, text, "")
            return {"answer": text, "answer_start": tf.cast(ch_start, tf.int32),
                    "answer_end": tf.cast(ch_end, tf.int32),
                    "score": tf.where(answered, score, null_prob if allow_null else 0.0)}
        return serving_default


def _limit_windows(n_w, max_windows):
    """Caps the work of one SQuAD request: its examples' windows [B] must sum to at most
    `max_windows` (each window is one row of the model batch), else the request fails with
    INVALID_ARGUMENT before any model work. Returns n_w, made to depend on the check."""
    total = tf.reduce_sum(n_w)
    check = tf.debugging.Assert(total <= max_windows, [
        tf.strings.format("SQuAD request needs {} context windows; this export answers at most "
                          f"{max_windows} per request (export.saved_model "
                          f"--max_windows_per_request): send shorter contexts or fewer "
                          f"questions per request", total)])
    with tf.control_dependencies([check]):
        return tf.identity(n_w)


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


def _gather_rows(matrix, index):
    """matrix [B, N], index [B] -> matrix[b, index[b]] [B] (0 where the row is empty)."""
    n = tf.shape(matrix, out_type=tf.int64)[1]
    matrix = tf.pad(matrix, [[0, 0], [0, 1]])
    index = tf.minimum(index, n)
    return tf.gather(matrix, index, batch_dims=1)
