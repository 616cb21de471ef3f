"""The examples both sides of `benchmarks.parity` train and evaluate on, read by bert-tf's own
readers, and the scoring of the transformers side's predictions with bert-tf's metric code
(the same functions `bert_tf.finetune` scores its own epochs with).

    examples(task, train_file, eval_file, **reader options) -> TaskData
    score(data, predictions) -> {metric: value}   (the task's main metric included)
"""

import dataclasses

from bert_tf.data import classification, conll, multiple_choice, squad
from bert_tf.data.labels import LabelMap
from bert_tf.evaluation import classification as classification_metrics
from bert_tf.evaluation import squad as squad_eval
from bert_tf.evaluation import tagging

# The main metric of each task, as bert_tf.finetune reports it.
MAIN_METRIC = {"classify": "accuracy", "tag": "f1", "squad": "f1", "multiple_choice": "accuracy"}


@dataclasses.dataclass
class TaskData:
    task: str
    train: list  # plain-JSON training rows for the transformers side
    eval: list  # plain-JSON eval rows (no gold)
    gold: object  # what `score` compares predictions with
    label_names: list = None
    version_2: bool = False

    @property
    def main_metric(self):
        return MAIN_METRIC[self.task]


def _classify(train_file, eval_file, options):
    cols = (
        options.get("text_a_column", "sentence"),
        options.get("text_b_column"),
        options.get("label_column", "label"),
    )
    train = classification.read_examples(train_file, *cols)
    held = classification.read_examples(eval_file, *cols)
    labels = LabelMap.from_examples(train)
    train_ids, _ = labels.encode(train)
    gold, _ = labels.encode(held, allow_unseen=True)
    rows = [{"a": e.text_a, "b": e.text_b, "label": int(i)} for e, i in zip(train, train_ids)]
    return TaskData(
        "classify",
        rows,
        [{"a": e.text_a, "b": e.text_b} for e in held],
        [int(i) for i in gold],
        labels.names,
    )


def _tag(train_file, eval_file, options):
    scheme = options.get("tag_scheme", "iob")
    train = conll.read_sentences(train_file, tag_scheme=scheme)
    held = conll.read_sentences(eval_file, tag_scheme=scheme)
    names = conll.tag_names(train)
    ids = {t: i for i, t in enumerate(names)}
    rows = [{"words": s.words, "tags": [ids[t] for t in s.tags]} for s in train]
    return TaskData("tag", rows, [{"words": s.words} for s in held], [s.tags for s in held], names)


def _squad(train_file, eval_file, options):
    train = squad.read_examples(train_file)
    held = squad.read_examples(eval_file)
    rows = [
        {
            "question": e.question,
            "context": e.context,
            "answer_start": -1 if e.is_impossible else e.answer_start,
            "answer_text": e.answer_text,
        }
        for e in train
    ]
    return TaskData(
        "squad",
        rows,
        [{"qid": e.qid, "question": e.question, "context": e.context} for e in held],
        {e.qid: e.answers for e in held},
        version_2=any(e.is_impossible or not e.answers for e in train + held),
    )


def _choice(train_file, eval_file, options):
    train = multiple_choice.read_examples(train_file)
    held = multiple_choice.read_examples(eval_file)
    rows = [{"context": e.context, "choices": e.choices, "label": e.label} for e in train]
    return TaskData(
        "multiple_choice",
        rows,
        [{"context": e.context, "choices": e.choices} for e in held],
        [e.label for e in held],
    )


_READERS = {"classify": _classify, "tag": _tag, "squad": _squad, "multiple_choice": _choice}


def examples(task, train_file, eval_file, **options):
    return _READERS[task](train_file, eval_file, options)


def score(data, predictions):
    """Scores the transformers side's predictions of one epoch."""
    if data.task == "classify":
        n = len(data.label_names)
        gold = [g if g >= 0 else (p + 1) % n for g, p in zip(data.gold, predictions)]
        return classification_metrics.classification_metrics(gold, predictions, n)
    if data.task == "tag":
        tags = [[data.label_names[i] for i in row] for row in predictions]
        return tagging.entity_scores(data.gold, tags)
    if data.task == "multiple_choice":
        right = sum(int(p == g) for p, g in zip(predictions, data.gold))
        return {"accuracy": right / len(data.gold), "examples": len(data.gold)}
    qids = [row["qid"] for row in data.eval]
    texts = dict(zip(qids, predictions["text"]))
    if not data.version_2:
        return squad_eval.evaluate(data.gold, texts)
    na = {
        q: (d if d is not None else float("inf")) for q, d in zip(qids, predictions["score_diff"])
    }
    return squad_eval.evaluate(data.gold, texts, na_probs=na, na_prob_threshold=0.0)
