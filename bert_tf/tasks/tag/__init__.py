"""CoNLL-style tagging (NER): word-piece classification, scored per entity as conlleval."""

import logging
import os

import numpy as np
import tensorflow as tf

from bert_tf.data import conll
from bert_tf.evaluation import tagging
from bert_tf.models import BertTagger
from bert_tf.tasks.base import Task, per_example_ce
from bert_tf.tasks.registry import register_task
from bert_tf.tasks.tag import serving, tflite
from bert_tf.tasks.tag.config import TagSettings
from bert_tf.training.objective import Ratio

log = logging.getLogger(__name__)  # never the root logger: the caller owns it


class TagObjective:
    """Cross-entropy over the labelled positions (each word's first piece; label -1 = none),
    averaged over all labelled positions of the global batch."""

    metric_names = ("accuracy",)

    def compute_loss(self, labels, outputs):
        logits = outputs["logits"]  # [B, T, C]
        labels = tf.cast(labels, tf.int32)  # [B, T]
        weight = tf.cast(labels >= 0, tf.float32)
        ce = per_example_ce(tf.maximum(labels, 0), logits) * weight  # [B, T]
        correct = (
            tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
            * weight
        )
        return (
            Ratio(tf.reduce_sum(ce), tf.reduce_sum(weight)),
            {"accuracy": Ratio(tf.reduce_sum(correct), tf.reduce_sum(weight))},
        )


@register_task("tag")
class TagTask(Task):
    main_metric = "f1"
    settings_class = TagSettings
    prediction_files = ("predictions.txt",)

    def per_token(self, output_name):
        return True

    def load(self):
        c, s = self.config, self.settings
        train = conll.read_sentences(c.train_file, tag_scheme=s.tag_scheme)
        if c.max_train_examples and len(train) > c.max_train_examples:
            train = train[: c.max_train_examples]
        self.label_names = list(s.label_names) if s.label_names else conll.tag_names(train)
        self.tag_ids = {t: i for i, t in enumerate(self.label_names)}
        self.scheme = tagging.detect_scheme([s.tags for s in train])
        stats = conll.TagFeatureStats()
        self.train_features, _ = conll.build_features(
            train,
            self.tokenizer,
            c.max_seq_length,
            self.tag_ids,
            stats=stats,
            doc_stride=s.doc_stride,
            first_window_only=s.long_inputs == "truncate",
        )
        self.data_stats.update(
            train_sentences=len(train),
            train_windows=stats.windows,
            train_sentences_split=stats.sentences_split,
        )
        if c.eval_file:
            self.eval_sentences = conll.read_sentences(c.eval_file, tag_scheme=s.tag_scheme)
            stats = conll.TagFeatureStats()
            self.eval_features, self.eval_windows = conll.build_features(
                self.eval_sentences,
                self.tokenizer,
                c.max_seq_length,
                self.tag_ids,
                allow_unseen=s.allow_unseen_labels,
                stats=stats,
                doc_stride=s.doc_stride,
            )
            self.data_stats.update(
                eval_sentences=len(self.eval_sentences),
                eval_windows=stats.windows,
                eval_sentences_split=stats.sentences_split,
                eval_unseen_labels=stats.unseen_tags,
            )
        for split in ("train", "eval"):
            n = self.data_stats.get(f"{split}_sentences_split")
            if n:
                log.info(
                    "%s: %d sentence(s) longer than max_seq_length=%d are read in "
                    "windows (--long_inputs=%s for training)",
                    split,
                    n,
                    c.max_seq_length,
                    s.long_inputs,
                )

    def task_info(self):
        c, s = self.config, self.settings
        return {
            "type": "tag",
            "label_names": self.label_names,
            "scheme": self.scheme,
            "dropout": c.dropout,
            "long_inputs": s.long_inputs,
            "doc_stride": s.stride(c.max_seq_length),
        }

    @classmethod
    def model_from_info(cls, encoder, task_info):
        if not task_info.get("label_names"):
            raise ValueError("tag needs a non-empty label_names")
        return BertTagger(
            encoder, len(task_info["label_names"]), dropout=task_info.get("dropout", 0.1)
        )

    @property
    def objective(self):
        return TagObjective()

    def predicted_tags(self, outputs):
        window_tags = []
        for window, out in zip(self.eval_windows, outputs):
            ids = np.asarray(out["logits"]).argmax(-1)
            window_tags.append([self.label_names[ids[p]] for p in window.positions])
        return conll.stitch_predictions(self.eval_sentences, self.eval_windows, window_tags)

    def evaluate(self, outputs):
        predicted = self.predicted_tags(outputs)
        scores = tagging.entity_scores([s.tags for s in self.eval_sentences], predicted)
        return scores

    def write_predictions(self, model_dir, outputs):
        path = os.path.join(model_dir, "predictions.txt")
        conll.write_predictions(path, self.eval_sentences, self.predicted_tags(outputs))
        return path

    # --- exports (export/ builds every format from these; bert_tf/tasks/base.py)
    @classmethod
    def serving_signature(cls, ctx):
        return serving.build(ctx)

    @classmethod
    def tflite_graph(cls, ctx):
        return tflite.build(ctx)
