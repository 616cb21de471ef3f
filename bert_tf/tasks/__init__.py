"""Fine-tuning tasks: each knows its data, model head, loss, metrics and prediction files.

    classify  sentence(-pair) classification / regression (BertClassifier)
    tag       CoNLL-style token tagging, entity-level F1 (BertTagger)
    squad     extractive QA, SQuAD v1.1 / v2.0 (BertSpanQA)

`bert_tf.finetuning.run` drives any of them; `TASKS` maps the task name to its class.
"""


def task_class(name):
    if name == "classify":
        from bert_tf.tasks.classify import ClassifyTask
        return ClassifyTask
    if name == "tag":
        from bert_tf.tasks.tag import TagTask
        return TagTask
    if name == "squad":
        from bert_tf.tasks.squad import SquadTask
        return SquadTask
    raise ValueError(f"unknown task {name!r}: expected classify, tag or squad")


TASK_NAMES = ("classify", "tag", "squad")
