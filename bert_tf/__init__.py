"""bert-tf: BERT in TensorFlow and Keras 3.

Shape legend used in comments throughout the package:
  B batch, T sequence length, H hidden size, N attention heads, D head size (H / N),
  I intermediate (feed-forward) size, L layers, V vocab size, P masked positions, C classes.
"""

import importlib

from bert_tf.config import BertConfig
from bert_tf.models import (BertClassifier, BertEncoder, BertMultipleChoice, BertPretrainer,
                            BertSpanQA, BertTagger)

__version__ = "0.1.0"

# Heavier entry points load on first use, so `import bert_tf` stays light.
_LAZY = {
    "load_encoder": "bert_tf.checkpoints.loader",
    "load_pretrainer": "bert_tf.checkpoints.loader",
    "load_task_model": "bert_tf.checkpoints.loader",
    "load_preprocessor": "bert_tf.text.preprocessor",
    "BertPreprocessor": "bert_tf.text.preprocessor",
    "BertTokenizer": "bert_tf.text.tokenizer",
    "ModelDir": "bert_tf.model_dir",
    # The recipes (= `python -m apps.pretrain` / `apps.finetune`, same settings).
    "pretrain": "bert_tf.recipes.pretraining_job",
    "PretrainConfig": "bert_tf.recipes.pretrain_config",
    "finetune": "bert_tf.recipes.finetuning",
    "FinetuneConfig": "bert_tf.recipes.finetune_config",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")


__all__ = ["BertConfig", "BertEncoder", "BertPretrainer", "BertClassifier", "BertTagger",
           "BertSpanQA", "BertMultipleChoice", *_LAZY]
