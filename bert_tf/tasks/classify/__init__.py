"""Sentence(-pair) classification and STS-B style regression."""

import logging
import os

import numpy as np
import tensorflow as tf

from bert_tf.data import classification as data
from bert_tf.data import labels
from bert_tf.evaluation import classification as metrics
from bert_tf.models import BertClassifier
from bert_tf.tasks.base import Task, per_example_ce, softmax, write_jsonl
from bert_tf.tasks.classify import serving, tflite
from bert_tf.tasks.classify.config import ClassifySettings
from bert_tf.tasks.registry import register_task
from bert_tf.training.objective import Ratio

log = logging.getLogger(__name__)  # never the root logger: the caller owns it


class ClassifyObjective:
    metric_names = ("accuracy",)

    def compute_loss(self, labels, outputs):
        logits = outputs["logits"]  # [B, C]
        loss = per_example_ce(labels, logits)  # [B]
        correct = tf.cast(
            tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32)),
            tf.float32,
        )
        return loss, {
            "accuracy": Ratio(tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32))
        }


class RegressionObjective:
    metric_names = ("mse",)

    def compute_loss(self, labels, outputs):
        prediction = tf.cast(outputs["logits"][:, 0], tf.float32)  # [B]
        err = tf.square(prediction - tf.cast(labels, tf.float32))
        return err, {"mse": err}


@register_task("classify")
class ClassifyTask(Task):
    settings_class = ClassifySettings
    prediction_files = ("predictions.jsonl",)

    @property
    def main_metric(self):
        return "corr" if self.settings.regression else "accuracy"

    @classmethod
    def is_file_source(cls, source):
        return not data.parse_tfds_source(source)  # tfds:NAME[:SPLIT]

    def _read(self, source, need_label=True):
        c = self.settings
        stats = data.ReadStats()
        examples = data.read_examples(
            source,
            c.text_a_column,
            c.text_b_column,
            c.label_column,
            need_label=need_label,
            tfds_data_dir=c.tfds_data_dir,
            stats=stats,
        )
        return examples, stats

    def load(self):
        c, s = self.config, self.settings
        train, train_stats = self._read(c.train_file)
        if c.max_train_examples and len(train) > c.max_train_examples:
            rng = np.random.default_rng(c.seed)
            keep = np.sort(rng.choice(len(train), c.max_train_examples, replace=False))
            train = [train[i] for i in keep]
        self.data_stats["train_examples"] = len(train)
        self.data_stats["train_blank_lines"] = train_stats.blank_lines
        if s.regression:
            self.label_map = None
            train_labels = labels.encode_regression(train)
        else:
            self.label_map = (
                labels.LabelMap(s.label_names)
                if s.label_names
                else labels.LabelMap.from_examples(train, c.train_file)
            )
            train_labels, _ = self.label_map.encode(train)
        self.train_features, _ = self._features(
            train, np.asarray(train_labels), s.long_inputs == "windows"
        )
        self.data_stats["train_windows"] = len(self.train_features)
        if c.eval_file:
            self.eval_examples, stats = self._read(c.eval_file)
            self.data_stats["eval_examples"] = len(self.eval_examples)
            if s.regression:
                self.eval_labels = np.asarray(labels.encode_regression(self.eval_examples))
            else:
                ids, unseen = self.label_map.encode(
                    self.eval_examples, allow_unseen=s.allow_unseen_labels
                )
                if unseen:
                    log.warning(
                        "%s: %d example(s) with labels not seen in training (counted as wrong)",
                        c.eval_file,
                        unseen,
                    )
                self.data_stats["eval_unseen_labels"] = unseen
                self.eval_labels = np.asarray(ids)
            self.eval_features, self.eval_example_of = self._features(self.eval_examples)
            self.data_stats["eval_windows"] = len(self.eval_features)

    def _features(self, examples, labels=None, windows=True):
        """(features, example index per feature row). Single texts longer than
        max_seq_length are read in windows (unless `windows` is false: truncated, as the
        original); text pairs are truncated longest-first."""
        seq_length, s = self.config.max_seq_length, self.settings
        if windows and not s.text_b_column:
            return data.build_window_features(
                examples, self.tokenizer, seq_length, labels, s.doc_stride
            )
        features = data.build_features(examples, self.tokenizer, seq_length, labels)
        return features, np.arange(len(examples))

    def example_logits(self, outputs):
        """[N, C] logits per eval example: the mean of its windows' logits."""
        logits = np.stack([o["logits"] for o in outputs]).astype(np.float64)  # [R, C]
        n = len(self.eval_examples)
        sums = np.zeros((n, logits.shape[1]))
        np.add.at(sums, self.eval_example_of, logits)
        return sums / np.bincount(self.eval_example_of, minlength=n)[:, None]

    def task_info(self):
        s = self.settings
        return {
            "type": "classify",
            "label_names": [] if s.regression else self.label_map.names,
            "num_classes": 1 if s.regression else len(self.label_map.names),
            "text_b": s.text_b_column is not None,
            "regression": bool(s.regression),
            "dropout": self.config.dropout,
            "long_inputs": s.long_inputs,
            "doc_stride": s.stride(self.config.max_seq_length),
        }

    @classmethod
    def model_from_info(cls, encoder, task_info):
        labels = task_info.get("label_names")
        num_classes = len(labels) if labels else task_info.get("num_classes")
        if not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(
                f"classify needs label_names or a positive num_classes, got {num_classes!r}"
            )
        return BertClassifier(encoder, num_classes, dropout=task_info.get("dropout", 0.1))

    @classmethod
    def warmup_requests(cls, task_info):
        requests = super().warmup_requests(task_info)
        if task_info.get("text_b"):
            for r in requests:
                r["text_b"] = list(reversed(r["text"]))
        return requests

    @property
    def objective(self):
        return RegressionObjective() if self.settings.regression else ClassifyObjective()

    def evaluate(self, outputs):
        logits = self.example_logits(outputs)  # [N, C]
        if self.settings.regression:
            return metrics.regression_metrics(self.eval_labels, logits[:, 0])
        n = len(self.label_map.names)
        predicted = logits.argmax(-1)
        # unseen gold labels (-1, allowed mode) can never be right: score them as wrong
        gold = np.where(self.eval_labels < 0, (predicted + 1) % n, self.eval_labels)
        results = metrics.classification_metrics(gold, predicted, n)
        if self.data_stats.get("eval_unseen_labels"):
            results["unseen_labels"] = self.data_stats["eval_unseen_labels"]
        return results

    def write_predictions(self, model_dir, outputs):
        rows = []
        windows = np.bincount(self.eval_example_of, minlength=len(self.eval_examples))
        for example, logits, n in zip(self.eval_examples, self.example_logits(outputs), windows):
            row = {"source": example.source, "text_a": example.text_a}
            if example.text_b is not None:
                row["text_b"] = example.text_b
            row["label"] = example.label
            if self.settings.regression:
                row["prediction"] = float(logits[0])
            else:
                p = softmax(logits)
                row["prediction"] = self.label_map.names[int(p.argmax())]
                row["probabilities"] = {
                    n: round(float(v), 6) for n, v in zip(self.label_map.names, p)
                }
            if n > 1:
                row["windows"] = int(n)
            rows.append(row)
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
    def tflite_tokenizers(cls):
        return ("exact", "fast")  # its graph needs no character offsets

    @classmethod
    def tflite_label_file(cls):
        return True
