"""bert-tf: BERT in TensorFlow and Keras 3.

Shape legend used in comments throughout the package:
  B batch, T sequence length, H hidden size, N attention heads, D head size (H / N),
  I intermediate (feed-forward) size, L layers, V vocab size, P masked positions, C classes.
"""

from bert_tf.config import BertConfig
from bert_tf.models import (BertClassifier, BertEncoder, BertPretrainer, BertSpanQA,
                            BertTagger)

__version__ = "0.1.0"
