"""Published BERT checkpoints in and out: Hugging Face (safetensors / pytorch_model.bin),
original Google TF1 checkpoints, and bert-tf model directories.

    load_encoder(path, dtype=None)   BertEncoder from any of the three directory kinds
    load_pretrainer(path)            BertPretrainer (+ MLM/NSP heads where the source has them)
    load_task_model(path)            the task model of a bert-tf model directory
                                     (bert_tf/model_dir/task_model.py builds and restores it)
    save_hf / save_google            write a Hugging Face / Google directory
    convert(input, output, to)       any kind -> bert_tf / hf / google (apps.convert)
"""

from bert_tf.checkpoints.convert import convert
from bert_tf.checkpoints.loader import load_encoder, load_pretrainer, load_task_model
from bert_tf.checkpoints.sources import CheckpointError, detect_kind, read_source
from bert_tf.checkpoints.writers import save_google, save_hf

__all__ = [
    "CheckpointError",
    "convert",
    "detect_kind",
    "load_encoder",
    "load_pretrainer",
    "load_task_model",
    "read_source",
    "save_google",
    "save_hf",
]
