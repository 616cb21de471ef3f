"""Extractive question answering on SQuAD v1.1 / v2.0 JSON."""

import math
import os

import tensorflow as tf

from bert_tf.atomic_io import atomic_write_json as write_json
from bert_tf.data import squad as data
from bert_tf.evaluation import squad as squad_eval
from bert_tf.evaluation.span_decoding import decode_example
from bert_tf.models import BertSpanQA
from bert_tf.tasks.base import Task, per_example_ce, write_jsonl
from bert_tf.tasks.registry import register_task
from bert_tf.tasks.squad import serving, tflite
from bert_tf.tasks.squad.config import SquadSettings


class SpanObjective:
    """(CE(start) + CE(end)) / 2 per window; position 0 ([CLS]) = no answer in this window."""

    metric_names = ("start_accuracy",)

    def compute_loss(self, labels, outputs):
        start = per_example_ce(labels["start_positions"], outputs["start_logits"])  # [B]
        end = per_example_ce(labels["end_positions"], outputs["end_logits"])  # [B]
        hit = tf.cast(
            tf.equal(
                tf.argmax(outputs["start_logits"], -1, output_type=tf.int32),
                tf.cast(labels["start_positions"], tf.int32),
            ),
            tf.float32,
        )
        return (start + end) / 2.0, {"start_accuracy": hit}


@register_task("squad")
class SquadTask(Task):
    main_metric = "f1"
    settings_class = SquadSettings
    prediction_files = ("predictions.json", "predictions.jsonl", "null_odds.json")

    def per_token(self, output_name):
        return True

    def _read(self, path):
        stats = data.SquadStats()
        examples = data.read_examples(
            path,
            self.settings.squad_offset_errors,
            stats=stats,
            allow_impossible=self.settings.version_2_with_negative is not False,
        )
        return examples, stats

    def load(self):
        c, s = self.config, self.settings
        train, stats = self._read(c.train_file)
        if c.max_train_examples and len(train) > c.max_train_examples:
            train = train[: c.max_train_examples]
        self.version_2 = (
            stats.version_2
            if s.version_2_with_negative is None
            else bool(s.version_2_with_negative)
        )
        fstats = data.SquadFeatureStats()
        self.train_features, _ = data.build_features(
            train,
            self.tokenizer,
            c.max_seq_length,
            s.context_stride,
            s.max_query_length,
            training=True,
            stats=fstats,
        )
        self.data_stats.update(
            train_questions=len(train),
            train_windows=fstats.windows,
            train_offsets_fixed=stats.offsets_fixed,
            train_answers_dropped=stats.answers_dropped,
        )
        if c.eval_file:
            self.eval_examples, estats = self._read(c.eval_file)
            fstats = data.SquadFeatureStats()
            self.eval_features, self.eval_spans = data.build_features(
                self.eval_examples,
                self.tokenizer,
                c.max_seq_length,
                s.context_stride,
                s.max_query_length,
                training=False,
                stats=fstats,
            )
            self.data_stats.update(
                eval_questions=len(self.eval_examples),
                eval_windows=fstats.windows,
                eval_offsets_fixed=estats.offsets_fixed,
            )

    def task_info(self):
        s = self.settings
        return {
            "type": "squad",
            "version_2_with_negative": self.version_2,
            "max_answer_length": s.max_answer_length,
            "doc_stride": s.context_stride,
            "max_query_length": s.max_query_length,
            "null_score_diff_threshold": s.null_score_diff_threshold,
            "n_best_size": s.n_best_size,
        }

    @classmethod
    def model_from_info(cls, encoder, task_info):
        return BertSpanQA(encoder)

    @classmethod
    def warmup_requests(cls, task_info):
        context = list(cls.WARMUP_TEXTS[:1])
        return [
            {"question": ["what is this?"], "context": context},
            {"question": ["what is this?"] * 2, "context": context * 2},
        ]

    @property
    def objective(self):
        return SpanObjective()

    def decode(self, outputs):
        by_example = [[] for _ in self.eval_examples]
        for span, out in zip(self.eval_spans, outputs):
            by_example[span.example].append(
                {
                    "start_logits": out["start_logits"],
                    "end_logits": out["end_logits"],
                    "char_start": span.char_start,
                    "char_end": span.char_end,
                    "is_max_context": span.is_max_context,
                }
            )
        return [
            decode_example(e.context, f, self.settings.n_best_size, self.settings.max_answer_length)
            for e, f in zip(self.eval_examples, by_example)
        ]

    def evaluate(self, outputs):
        decoded = self.decode(outputs)
        gold = {e.qid: e.answers for e in self.eval_examples}
        if not self.version_2:
            predictions = {e.qid: d.best_text for e, d in zip(self.eval_examples, decoded)}
            return squad_eval.evaluate(gold, predictions)
        predictions = {e.qid: d.best_text for e, d in zip(self.eval_examples, decoded)}
        na = {e.qid: d.score_diff for e, d in zip(self.eval_examples, decoded)}
        results = squad_eval.evaluate(
            gold,
            predictions,
            na_probs=na,
            na_prob_threshold=self.settings.null_score_diff_threshold,
        )
        results["null_score_diff_threshold"] = self.settings.null_score_diff_threshold
        return results

    def write_predictions(self, model_dir, outputs):
        decoded = self.decode(outputs)
        threshold = self.settings.null_score_diff_threshold if self.version_2 else None
        answers = {e.qid: d.prediction(threshold) for e, d in zip(self.eval_examples, decoded)}
        write_json(os.path.join(model_dir, "predictions.json"), answers)
        rows = []
        for e, d in zip(self.eval_examples, decoded):
            diff = d.score_diff if math.isfinite(d.score_diff) else None
            rows.append(
                {
                    "id": e.qid,
                    "prediction": answers[e.qid],
                    "score_diff": diff,
                    "n_best": [
                        {
                            "text": s.text,
                            "start_char": s.start_char,
                            "end_char": s.end_char,
                            "probability": s.probability,
                        }
                        for s in d.n_best[:5]
                    ],
                }
            )
        path = os.path.join(model_dir, "predictions.jsonl")
        write_jsonl(path, rows)
        if self.version_2:
            write_json(
                os.path.join(model_dir, "null_odds.json"), {r["id"]: r["score_diff"] for r in rows}
            )
        return path

    # --- exports (export/ builds every format from these; bert_tf/tasks/base.py)
    @classmethod
    def serving_signature(cls, ctx):
        return serving.build(ctx)

    @classmethod
    def tflite_graph(cls, ctx):
        return tflite.build(ctx)
