"""Entity-level precision / recall / F1 for IOB-tagged sequences, exactly as conlleval.

conlleval (CoNLL-2000/2003 `conlleval` Perl script) and seqeval's default mode share one chunk
rule set, which handles IOB1 and IOB2 (BIO) alike, plus IOE/IOBES tags:
  - a chunk starts at B-X; at I-X (or E-X) after O or after a chunk of another type; at S-X;
  - a chunk ends before B-X / O / a type change, after E-X / S-X.
So "O I-PER I-PER" is one PER chunk in both schemes (IOB1 style, tolerated in IOB2), and
"B-PER I-LOC" is two chunks. A predicted chunk is correct iff its type, first and last
position equal a gold chunk's. Precision = correct / predicted chunks, recall = correct /
gold chunks, F1 = their harmonic mean; 0 where a denominator is 0 (conlleval prints 0.00).
"""

import collections


def split_tag(tag):
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''); a bare 'PER' -> ('I', 'PER') (IO scheme)."""
    if tag in ("O", "", None):
        return "O", ""
    if len(tag) >= 2 and tag[1] in "-_" and tag[0] in "BIESO":
        return tag[0], tag[2:]
    return "I", tag


def _end_of_chunk(prev_tag, tag, prev_type, type_):
    if prev_tag in ("E", "S"):
        return True
    if prev_tag == "B" and tag in ("B", "S", "O"):
        return True
    if prev_tag == "I" and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _start_of_chunk(prev_tag, tag, prev_type, type_):
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def get_chunks(tags):
    """Chunks of one sequence as a list of (type, first, last) with inclusive positions."""
    chunks = []
    prev_tag, prev_type, start = "O", "", None
    for i, tag in enumerate(list(tags) + ["O"]):
        t, type_ = split_tag(tag)
        if start is not None and _end_of_chunk(prev_tag, t, prev_type, type_):
            chunks.append((prev_type, start, i - 1))
            start = None
        if _start_of_chunk(prev_tag, t, prev_type, type_):
            start = i
        prev_tag, prev_type = t, type_
    return chunks


def _prf(correct, predicted, gold):
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_scores(gold_sequences, predicted_sequences):
    """conlleval scores over sentences (lists of tag strings, aligned word by word).

    Returns {"precision", "recall", "f1", "accuracy" (token level), "num_gold",
    "num_predicted", "num_correct", "per_type": {type: {precision, recall, f1, support}}}.
    """
    gold_sequences, predicted_sequences = list(gold_sequences), list(predicted_sequences)
    if len(gold_sequences) != len(predicted_sequences):
        raise ValueError(
            f"{len(gold_sequences)} gold sentences but {len(predicted_sequences)} predicted"
        )
    counts = collections.defaultdict(lambda: [0, 0, 0])  # type -> [correct, predicted, gold]
    tokens = correct_tokens = 0
    for n, (gold, pred) in enumerate(zip(gold_sequences, predicted_sequences)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {n}: {len(gold)} gold tags but {len(pred)} predicted")
        gold_chunks, pred_chunks = set(get_chunks(gold)), set(get_chunks(pred))
        for type_, _, _ in gold_chunks:
            counts[type_][2] += 1
        for type_, _, _ in pred_chunks:
            counts[type_][1] += 1
        for type_, _, _ in gold_chunks & pred_chunks:
            counts[type_][0] += 1
        tokens += len(gold)
        correct_tokens += sum(g == p for g, p in zip(gold, pred))
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    precision, recall, f1 = _prf(*total)
    per_type = {}
    for type_ in sorted(counts):
        p, r, f = _prf(*counts[type_])
        per_type[type_] = {"precision": p, "recall": r, "f1": f, "support": counts[type_][2]}
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": correct_tokens / tokens if tokens else 0.0,
        "num_correct": total[0],
        "num_predicted": total[1],
        "num_gold": total[2],
        "per_type": per_type,
    }


def detect_scheme(sequences):
    """'iob1' if some chunk starts with I- (after O or another type), else 'iob2'."""
    for tags in sequences:
        prev_tag, prev_type = "O", ""
        for tag in tags:
            t, type_ = split_tag(tag)
            if t == "I" and (prev_tag == "O" or prev_type != type_):
                return "iob1"
            prev_tag, prev_type = t, type_
    return "iob2"


def convert_scheme(tags, scheme):
    """Rewrites one sequence's chunks in 'iob1' or 'iob2' (chunks are unchanged)."""
    if scheme not in ("iob1", "iob2"):
        raise ValueError(f"tag scheme: expected 'iob1' or 'iob2', got {scheme!r}")
    out = ["O"] * len(tags)
    prev_end, prev_type = -2, None
    for type_, first, last in get_chunks(tags):
        if scheme == "iob2":
            head = "B"
        else:  # IOB1: B- only where a chunk directly follows one of the same type
            head = "B" if prev_end == first - 1 and prev_type == type_ else "I"
        out[first] = f"{head}-{type_}"
        for i in range(first + 1, last + 1):
            out[i] = f"I-{type_}"
        prev_end, prev_type = last, type_
    return out
