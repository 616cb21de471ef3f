"""SQuAD v1.1 / v2.0 JSON: questions with their context and gold answers.

    {"version": "v2.0", "data": [{"title": ..., "paragraphs": [{"context": ...,
      "qas": [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}

Each answer's offsets are checked against the context (context[start:start+len(text)] ==
text). On a mismatch the reader, in "warn" mode, moves the answer to the occurrence of its text
in the context nearest to the stated offset ("fixed"), or, if the text does not occur at all,
drops that answer for training ("dropped"; the text still counts as gold for evaluation), and
logs a count; in "fail" mode it raises naming the file and the question id.
v2.0 is detected from "version" or any "is_impossible" field. Answer texts with leading or
trailing whitespace are stripped (the offset moves past the leading part). Duplicate question
ids fail (they would silently overwrite each other's predictions), and so does an
is_impossible question when SQuAD v2.0 is off (`allow_impossible=False`). The file must be
UTF-8 (a BOM is fine); a bad byte names its line.
"""

import dataclasses
import json
import logging

import numpy as np
import tensorflow as tf

from bert_tf.data.batching import RaggedFeatures
from bert_tf.data.errors import DataError
from bert_tf.data.text_files import read_text
from bert_tf.data.windows import max_context_windows, window_starts  # noqa: F401 (API)
from bert_tf.settings import ConfigError

log = logging.getLogger(__name__)  # never the root logger: the caller owns it


@dataclasses.dataclass
class QAExample:
    qid: str
    question: str
    context: str
    answers: list  # gold answer texts (all of them, for evaluation)
    answer_start: int = -1  # character offset of the first (training) answer; -1 if none
    answer_text: str = ""  # its text (exactly context[answer_start:answer_start+len])
    is_impossible: bool = False
    title: str = ""


@dataclasses.dataclass
class SquadStats:
    questions: int = 0
    impossible: int = 0
    offsets_fixed: int = 0
    answers_dropped: int = 0
    version_2: bool = False


def _nearest_occurrence(context, text, start):
    best, i = -1, context.find(text)
    while i >= 0:
        if best < 0 or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1)
    return best


def _load_json(path):
    try:
        root = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON ({e.msg})", line=e.lineno) from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise DataError(path, 'expected a SQuAD JSON object with a "data" list', field="data")
    return root


def _strip_answer(context, text, start):
    """Leading/trailing whitespace is not part of an answer (as the original, which works on
    whitespace-split words): strip it and move `start` past the leading part where the
    offset pointed at the unstripped text."""
    stripped = text.strip()
    if stripped == text or not isinstance(start, int):
        return text, start
    lead = len(text) - len(text.lstrip())
    if context[start + lead : start + lead + len(stripped)] == stripped:
        return stripped, start + lead
    return stripped, start


def _training_answer(path, qid, context, answer, offset_errors, stats):
    """(answer_start, text) of the training answer, checked against the context."""
    text, start = _strip_answer(context, answer["text"], answer.get("answer_start", -1))
    if (
        isinstance(start, int)
        and not isinstance(start, bool)
        and text
        and context[start : start + len(text)] == text
    ):
        return start, text
    got = context[start : start + len(text)] if isinstance(start, int) else start
    if offset_errors == "fail":
        raise DataError(
            path,
            f"answer {text!r} at answer_start={start} does not match the context (there: {got!r})",
            field=f"question id {qid}",
        )
    found = (
        _nearest_occurrence(context, text, start if isinstance(start, int) else 0) if text else -1
    )
    if found >= 0:
        stats.offsets_fixed += 1
        return found, text
    stats.answers_dropped += 1
    return -1, ""


def _read_question(path, qa, context, title, where, offset_errors, stats):
    qid = qa.get("id") if isinstance(qa, dict) else None
    if qid is None:
        raise DataError(path, "question without an id", field=where)
    qid = str(qid)
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(path, "missing or empty question", field=f"question id {qid}")
    impossible = bool(qa.get("is_impossible", False))
    answers = qa.get("answers") or []
    for answer in answers:
        if not isinstance(answer, dict) or "text" not in answer:
            raise DataError(path, 'answer without "text"', field=f"question id {qid}")
    start, text = -1, ""
    if impossible:
        stats.impossible += 1
    elif not answers:
        raise DataError(path, "no answers and not is_impossible", field=f"question id {qid}")
    else:
        start, text = _training_answer(path, qid, context, answers[0], offset_errors, stats)
    return QAExample(
        qid, question, context, [a["text"] for a in answers], start, text, impossible, title
    )


def read_examples(path, offset_errors="warn", stats=None, allow_impossible=True):
    """Reads a SQuAD JSON file; see the module docstring. Duplicate question ids fail; so
    does an is_impossible question unless `allow_impossible` (SQuAD v2.0 mode)."""
    if offset_errors not in ("warn", "fail"):
        raise ConfigError(f"--squad_offset_errors: expected warn or fail, got {offset_errors!r}")
    stats = stats if stats is not None else SquadStats()
    root = _load_json(path)
    version_2 = str(root.get("version", "")).startswith("v2") or '"is_impossible"' in json.dumps(
        root["data"][:50]
    )
    examples, seen = [], {}
    for a, article in enumerate(root["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"data[{a}].paragraphs[{p}]"
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise DataError(path, "missing or empty context", field=f"{where}.context")
            for q, qa in enumerate(paragraph.get("qas", [])):
                example = _read_question(
                    path,
                    qa,
                    context,
                    article.get("title", ""),
                    f"{where}.qas[{q}]",
                    offset_errors,
                    stats,
                )
                if example.qid in seen:
                    raise DataError(
                        path,
                        f"duplicate question id {example.qid!r} (also at "
                        f"{seen[example.qid]}): ids must be unique",
                        field=f"{where}.qas[{q}].id",
                    )
                if example.is_impossible and not allow_impossible:
                    raise DataError(
                        path,
                        f"question id {example.qid!r} has is_impossible="
                        "true (a SQuAD v2.0 file) but SQuAD v2.0 is off "
                        "(--noversion_2_with_negative)",
                        field=f"{where}.qas[{q}].is_impossible",
                    )
                seen[example.qid] = f"{where}.qas[{q}]"
                version_2 = version_2 or "is_impossible" in qa
                examples.append(example)
    if not examples:
        raise DataError(path, "no questions")
    stats.questions = len(examples)
    stats.version_2 = version_2
    if stats.offsets_fixed or stats.answers_dropped:
        log.warning(
            "%s: %d answer offset(s) did not match the context: %d moved to the "
            "nearest occurrence of the answer text, %d answers not found in the "
            "context (not trained on)",
            path,
            stats.offsets_fixed + stats.answers_dropped,
            stats.offsets_fixed,
            stats.answers_dropped,
        )
    return examples


@dataclasses.dataclass
class SpanFeature:
    """Decoding info of one window: its example, and per token position the context
    characters [char_start, char_end) (-1 off the context) and the max-context flag."""

    example: int
    char_start: object  # np.int64 [T]
    char_end: object
    is_max_context: object  # bool [T]


@dataclasses.dataclass
class SquadFeatureStats:
    windows: int = 0
    multi_window_examples: int = 0
    answer_outside_window: int = 0  # training windows whose answer lies outside (-> [CLS])
    questions_truncated: int = 0


def _char_offsets(text, begin_bytes, end_bytes):
    """Byte offsets into the UTF-8 of `text` -> character offsets [begin, end)."""
    sizes = [len(ch.encode("utf-8")) for ch in text]
    byte_to_char = np.repeat(np.arange(len(text), dtype=np.int64), sizes)
    begin = (
        byte_to_char[np.asarray(begin_bytes, np.int64)]
        if len(begin_bytes)
        else np.zeros([0], np.int64)
    )
    end = (
        byte_to_char[np.asarray(end_bytes, np.int64) - 1] + 1
        if len(end_bytes)
        else np.zeros([0], np.int64)
    )
    return begin, end


def _tokenize_with_char_offsets(tokenizer, texts, chunk_size=256):
    out = []
    for start in range(0, len(texts), chunk_size):
        part = texts[start : start + chunk_size]
        ids, begin, end = tokenizer.tokenize_with_offsets(tf.constant(part))
        for text, i, b, e in zip(part, ids.to_list(), begin.to_list(), end.to_list()):
            cb, ce = _char_offsets(text, b, e)
            out.append((i, cb, ce))
    return out


def build_features(
    examples,
    tokenizer,
    max_seq_length=384,
    doc_stride=128,
    max_query_length=64,
    training=False,
    stats=None,
):
    """[CLS] question [SEP] context-window [SEP] features, tokenized once.

    Long contexts become several windows `doc_stride` tokens apart. With `training`, each
    window gets start/end positions of the answer, or 0 ([CLS]) when the question is
    unanswerable or the answer is not fully inside the window (as the original).
    Returns (RaggedFeatures, [SpanFeature])."""
    stats = stats if stats is not None else SquadFeatureStats()
    contexts = sorted({e.context for e in examples})
    context_tokens = dict(zip(contexts, _tokenize_with_char_offsets(tokenizer, contexts)))
    questions = _tokenize_questions(tokenizer, examples)
    rows = _FeatureRows()
    for index, (example, q_ids) in enumerate(zip(examples, questions)):
        if len(q_ids) > max_query_length:
            q_ids = q_ids[:max_query_length]
            stats.questions_truncated += 1
        doc_ids, doc_begin, doc_end = context_tokens[example.context]
        window = max_seq_length - len(q_ids) - 3
        if window < 1:
            raise ConfigError(
                f"--max_seq_length={max_seq_length} leaves no room for the "
                f"context after a {len(q_ids)}-token question (question "
                f"{example.qid!r}; lower --max_query_length)"
            )
        answer = _answer_tokens(example, doc_begin, doc_end) if training else None
        offsets = window_starts(len(doc_ids), window, doc_stride)
        stats.multi_window_examples += int(len(offsets) > 1)
        best_window = max_context_windows(len(doc_ids), offsets, window)
        for w_index, w_start in enumerate(offsets):
            w_len = min(len(doc_ids) - w_start, window)
            ids = (
                [tokenizer.cls_id]
                + q_ids
                + [tokenizer.sep_id]
                + doc_ids[w_start : w_start + w_len]
                + [tokenizer.sep_id]
            )
            offset = len(q_ids) + 2
            in_window = slice(w_start, w_start + w_len)
            span = _span_feature(
                index,
                len(ids),
                offset,
                doc_begin[in_window],
                doc_end[in_window],
                best_window[in_window] == w_index,
            )
            if training:
                if answer and w_start <= answer[0] and answer[1] < w_start + w_len:
                    rows.add_label(answer[0] - w_start + offset, answer[1] - w_start + offset)
                else:
                    stats.answer_outside_window += int(answer is not None)
                    rows.add_label(0, 0)
            rows.add(ids, [0] * offset + [1] * (w_len + 1), span)
    stats.windows = len(rows.spans)
    labels = {"start_positions": rows.starts, "end_positions": rows.ends} if training else {}
    return RaggedFeatures.from_lists(rows.word_ids, rows.type_ids, labels), rows.spans


class _FeatureRows:
    """The features of build_features, one window at a time."""

    def __init__(self):
        self.word_ids, self.type_ids, self.starts, self.ends, self.spans = [], [], [], [], []

    def add(self, ids, types, span):
        self.word_ids.append(ids)
        self.type_ids.append(types)
        self.spans.append(span)

    def add_label(self, start, end):
        self.starts.append(start)
        self.ends.append(end)


def _tokenize_questions(tokenizer, examples, chunk_size=1024):
    questions = []
    for start in range(0, len(examples), chunk_size):
        part = [e.question for e in examples[start : start + chunk_size]]
        questions += tokenizer.tokenize(tf.constant(part)).to_list()
    return questions


def _answer_tokens(example, doc_begin, doc_end):
    """(first, last) context token of a training example's answer, or None."""
    if example.answer_start < 0 or example.is_impossible:
        return None
    s_char = example.answer_start
    e_char = s_char + len(example.answer_text)
    inside = np.nonzero((doc_end > s_char) & (doc_begin < e_char))[0]
    return (int(inside[0]), int(inside[-1])) if len(inside) else None


def _span_feature(index, length, offset, char_begin, char_end, is_max_context):
    """SpanFeature of a window of `length` tokens whose context starts at `offset`: the
    context tokens' character offsets and max-context flags, -1 / False elsewhere."""
    w_len = len(char_begin)
    char_start = np.full(length, -1, np.int64)
    char_stop = np.full(length, -1, np.int64)
    char_start[offset : offset + w_len] = char_begin
    char_stop[offset : offset + w_len] = char_end
    is_max = np.zeros(length, bool)
    is_max[offset : offset + w_len] = is_max_context
    return SpanFeature(index, char_start, char_stop, is_max)
