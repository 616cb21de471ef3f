"""BERT models: the encoder, the pre-trainer and the task models."""

from bert_tf.models.classifier import BertClassifier
from bert_tf.models.encoder import INPUT_NAMES, BertEncoder, encoder_inputs
from bert_tf.models.multiple_choice import BertMultipleChoice
from bert_tf.models.pretrainer import BertPretrainer
from bert_tf.models.span_qa import BertSpanQA
from bert_tf.models.tagger import BertTagger

__all__ = [
    "BertClassifier",
    "BertEncoder",
    "BertMultipleChoice",
    "BertPretrainer",
    "BertSpanQA",
    "BertTagger",
    "INPUT_NAMES",
    "encoder_inputs",
]
