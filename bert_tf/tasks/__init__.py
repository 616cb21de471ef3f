"""Tasks: each knows its data, model head, loss, metrics and prediction files.

    classify         sentence(-pair) classification / regression (BertClassifier)
    tag              CoNLL-style token tagging, entity-level F1 (BertTagger)
    squad            extractive QA, SQuAD v1.1 / v2.0 (BertSpanQA)
    multiple_choice  SWAG-style multiple choice (BertMultipleChoice)
    pretraining      masked LM + next sentence prediction (BertPretrainer)

A task is ONE package here whose class registers itself with `@register_task(name)`
(`bert_tf.tasks.registry`); nothing else lists the tasks. `bert_tf.finetune` drives any
fine-tuning task; the model directory, the model loader and `apps.finetune --task` ask the
registry. Task packages load on first look-up, so importing this package stays light.
"""

from bert_tf.tasks.registry import get_task, register_task, task_names

__all__ = ["get_task", "register_task", "task_names"]
