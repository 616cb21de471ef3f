"""Multiple choice (SWAG): C candidate continuations per context, one is right.

Data: SWAG CSV or JSONL (bert_tf/data/multiple_choice.py). Model: BertMultipleChoice (one
learned vector scores each `[CLS] context [SEP] choice [SEP]`; softmax over the C scores).
Batches hold whole examples ([b, C, T], padded to the batch's longest sequence); --batch_size
counts examples, so one step encodes batch_size * C sequences. Metric: accuracy. Predictions:
predictions.jsonl, one row per eval example with the chosen index and the C probabilities.
"""

import logging
import os

import numpy as np

from bert_tf.data import multiple_choice as data
from bert_tf.models import BertMultipleChoice
from bert_tf.tasks.base import Task, softmax, write_jsonl
from bert_tf.tasks.classify import ClassifyObjective
from bert_tf.tasks.multiple_choice import serving, tflite
from bert_tf.tasks.multiple_choice.config import MultipleChoiceSettings
from bert_tf.tasks.registry import register_task

log = logging.getLogger(__name__)  # never the root logger: the caller owns it


@register_task("multiple_choice")
class MultipleChoiceTask(Task):
    main_metric = "accuracy"
    settings_class = MultipleChoiceSettings
    prediction_files = ("predictions.jsonl",)

    def load(self):
        c = self.config
        train = data.read_examples(c.train_file)
        if c.max_train_examples and len(train) > c.max_train_examples:
            train = train[: c.max_train_examples]
        self.num_choices = len(train[0].choices)
        self.train_features = data.build_features(train, self.tokenizer, c.max_seq_length)
        self.data_stats.update(train_examples=len(train), num_choices=self.num_choices)
        if c.eval_file:
            self.eval_examples = data.read_examples(c.eval_file)
            self.eval_features = data.build_features(
                self.eval_examples, self.tokenizer, c.max_seq_length
            )
            self.data_stats["eval_examples"] = len(self.eval_examples)
            if len(self.eval_examples[0].choices) != self.num_choices:
                log.warning(
                    "%s: %d choices per example, training had %d (the model scores any number)",
                    c.eval_file,
                    len(self.eval_examples[0].choices),
                    self.num_choices,
                )

    def task_info(self):
        return {
            "type": "multiple_choice",
            "num_choices": self.num_choices,
            "dropout": self.config.dropout,
        }

    @classmethod
    def model_from_info(cls, encoder, task_info):
        return BertMultipleChoice(encoder, dropout=task_info.get("dropout", 0.1))

    @classmethod
    def warmup_requests(cls, task_info):
        choices = ["it is.", "it is not, because the words are split into word pieces."]
        return [
            {"context": list(cls.WARMUP_TEXTS[:1]), "choices": [choices]},
            {"context": list(cls.WARMUP_TEXTS), "choices": [choices, choices[::-1]]},
        ]

    def make_dataset(self, features, batches, with_labels=True, compile_cost_tokens=0):
        return data.make_dataset(
            features, batches, with_labels=with_labels, compile_cost_tokens=compile_cost_tokens
        )

    @property
    def objective(self):
        return ClassifyObjective()  # cross-entropy + accuracy over the C choice logits

    def evaluate(self, outputs):
        predicted = np.asarray([int(np.argmax(o["logits"])) for o in outputs])
        gold = self.eval_features.labels
        return {"accuracy": float(np.mean(predicted == gold)), "examples": int(len(gold))}

    def write_predictions(self, model_dir, outputs):
        rows = []
        for example, out in zip(self.eval_examples, outputs):
            p = softmax(out["logits"])
            rows.append(
                {
                    "source": example.source,
                    "context": example.context,
                    "choices": example.choices,
                    "label": example.label,
                    "prediction": int(p.argmax()),
                    "probabilities": [round(float(v), 6) for v in p],
                }
            )
        path = os.path.join(model_dir, "predictions.jsonl")
        write_jsonl(path, rows)
        return path

    # --- exports (export/ builds every format from these; bert_tf/tasks/base.py)
    @classmethod
    def serving_signature(cls, ctx):
        return serving.build(ctx)

    @classmethod
    def tflite_graph(cls, ctx):
        return tflite.build(ctx)

    @classmethod
    def encoded_input_specs(cls):
        return serving.ENCODED_SPECS  # [B, C, T]
