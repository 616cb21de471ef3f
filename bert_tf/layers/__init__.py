"""Keras layers that compose BERT."""

from bert_tf.layers.activations import gelu, gelu_approximate, get_activation
from bert_tf.layers.attention import MultiHeadSelfAttention, attention_bias
from bert_tf.layers.dense_head import (
    ClassificationHead,
    NextSentenceHead,
    SpanHead,
    TokenClassificationHead,
)
from bert_tf.layers.embeddings import BertEmbeddings
from bert_tf.layers.masked_lm_head import MaskedLMHead, gather_positions
from bert_tf.layers.transformer import TransformerBlock

__all__ = [
    "BertEmbeddings",
    "ClassificationHead",
    "MaskedLMHead",
    "MultiHeadSelfAttention",
    "NextSentenceHead",
    "SpanHead",
    "TokenClassificationHead",
    "TransformerBlock",
    "attention_bias",
    "gather_positions",
    "gelu",
    "gelu_approximate",
    "get_activation",
]
