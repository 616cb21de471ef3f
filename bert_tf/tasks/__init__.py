"""Fine-tuning tasks: each knows its data, model head, loss, metrics and prediction files.

    classify         sentence(-pair) classification / regression (BertClassifier)
    tag              CoNLL-style token tagging, entity-level F1 (BertTagger)
    squad            extractive QA, SQuAD v1.1 / v2.0 (BertSpanQA)
    multiple_choice  SWAG-style multiple choice (BertMultipleChoice)

`bert_tf.finetune` drives any of them. A task is ONE module here with a `Task` subclass;
registering it is one line in `TASKS` (name -> "module:Class"). The model directory, the model
loader and `apps.finetune --task` all read this table. Modules load on first use, so importing
this package stays light.

Pre-training is a task too: `bert_tf.tasks.pretraining` (model, objective, metrics; its data are
the pre-training records). The pre-training recipe runs it, not the fine-tuning one, so it is
not in `TASKS` (the fine-tuning tasks).
"""

import importlib

TASKS = {
    "classify": "bert_tf.tasks.classify:ClassifyTask",
    "tag": "bert_tf.tasks.tag:TagTask",
    "squad": "bert_tf.tasks.squad:SquadTask",
    "multiple_choice": "bert_tf.tasks.multiple_choice:MultipleChoiceTask",
}
TASK_NAMES = tuple(TASKS)


def task_class(name):
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: expected one of {', '.join(TASK_NAMES)}")
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
