"""bert-tf: BERT in TensorFlow and Keras 3.

Public API (`import bert_tf`; each name's own help() has the details):

  Models
    BertConfig          encoder hyper-parameters; BertConfig.preset("tiny" ... "large"), JSON
    BertEncoder         the encoder (keras.Model): word ids, mask, type ids -> sequence_output,
                        pooled_output, encoder_outputs (the TF Hub BERT names)
    BertPretrainer      encoder + masked-LM and next-sentence heads
    BertClassifier      encoder + classification/regression head: logits [B, C]
    BertTagger          encoder + per-token head (NER): logits [B, T, C]
    BertSpanQA          encoder + SQuAD span head: start_logits, end_logits [B, T]
    BertMultipleChoice  encoder + one score per choice: [B, C, T] inputs -> logits [B, C]
  Loading
    load_encoder        a BertEncoder with weights from a bert-tf, Hugging Face or Google dir
    load_pretrainer     a BertPretrainer with the encoder and, where present, MLM/NSP weights
    load_task_model     the full task model of a bert-tf model directory
    load_preprocessor   strings -> the three int32 encoder inputs, for a directory's vocab
    BertPreprocessor    tokenizer + packer as a Keras layer ([CLS] a [SEP] b [SEP], padded)
    BertTokenizer       strings -> WordPiece ids, exactly the original BERT algorithm
    ModelDir            a bert-tf model directory (read/write), or a Hugging Face or Google one
  Recipes (the same settings as `python -m apps.pretrain` / `apps.finetune`)
    pretrain            run a pre-training job from a PretrainConfig; returns eval results
    PretrainConfig      every setting of a pre-training run
    finetune            run a fine-tuning job from a FinetuneConfig; returns eval results
    FinetuneConfig      every setting of a fine-tuning run
  Errors
    BertTfError         base of every bert-tf error; str(e) is one line for the user

Shape legend used in comments throughout the package:
  B batch, T sequence length, H hidden size, N attention heads, D head size (H / N),
  I intermediate (feed-forward) size, L layers, V vocab size, P masked positions, C classes.
"""

import importlib
from typing import Any

from bert_tf.config import BertConfig
from bert_tf.errors import BertTfError
from bert_tf.models import (
    BertClassifier,
    BertEncoder,
    BertMultipleChoice,
    BertPretrainer,
    BertSpanQA,
    BertTagger,
)

__version__ = "0.1.0"

# Heavier entry points load on first use (tensorflow_text, the recipes): about 10% of the
# import time of the package, which itself is mostly TensorFlow's.
_LAZY = {
    "load_encoder": "bert_tf.checkpoints.loader",
    "load_pretrainer": "bert_tf.checkpoints.loader",
    "load_task_model": "bert_tf.checkpoints.loader",
    "load_preprocessor": "bert_tf.text.preprocessor",
    "BertPreprocessor": "bert_tf.text.preprocessor",
    "BertTokenizer": "bert_tf.text.tokenizer",
    "ModelDir": "bert_tf.model_dir",
    # The recipes (= `python -m apps.pretrain` / `apps.finetune`, same settings).
    "pretrain": "bert_tf.recipes.pretraining",
    "PretrainConfig": "bert_tf.recipes.pretrain_config",
    "finetune": "bert_tf.recipes.finetuning",
    "FinetuneConfig": "bert_tf.recipes.finetune_config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dir() and help() list the lazily loaded names too (help() then loads them).
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BertConfig",
    "BertEncoder",
    "BertPretrainer",
    "BertClassifier",
    "BertTagger",
    "BertSpanQA",
    "BertMultipleChoice",
    *_LAZY,
    "BertTfError",
]
