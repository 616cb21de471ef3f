"""File names of the three directory kinds bert-tf reads, and telling them apart.

"bert_tf"  config.json with "format": "bert_tf" (+ vocab.txt, model.weights.h5,
           checkpoints/, logs/, eval_results.json)
"hf"       Hugging Face: config.json + model.safetensors and/or pytorch_model.bin
           + vocab.txt (+ tokenizer_config.json)
"google"   google-research/bert: bert_config.json + bert_model.ckpt.{index,data-*}
           + vocab.txt (or a checkpoint prefix whose directory holds bert_config.json)
"""

import os

from bert_tf.model_dir.json_files import read_json

FORMAT = "bert_tf"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
WEIGHTS_FILE = "model.weights.h5"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
EVAL_RESULTS_FILE = "eval_results.json"

HF_CONFIG = "config.json"
HF_SAFETENSORS = "model.safetensors"
HF_PYTORCH = "pytorch_model.bin"
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
HF_SPECIAL_TOKENS_MAP = "special_tokens_map.json"
GOOGLE_CONFIG = "bert_config.json"
GOOGLE_CKPT = "bert_model.ckpt"

KINDS = ("bert_tf", "hf", "google")
EXPECTED = (
    f"a bert-tf model dir with config.json, a Hugging Face dir with {HF_CONFIG} + "
    f"{HF_SAFETENSORS}, or a Google dir with {GOOGLE_CONFIG} + {GOOGLE_CKPT}.index"
)


def is_model_dir(path):
    """True if `path` holds a bert-tf config.json."""
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        return False
    try:
        return read_json(config_path).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def detect_kind(path):
    """ "bert_tf", "hf" or "google" for a directory (or Google checkpoint prefix); else None."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if is_model_dir(path):
            return "bert_tf"
        if os.path.isfile(os.path.join(path, GOOGLE_CONFIG)) or google_prefix(path):
            return "google"
        if os.path.isfile(os.path.join(path, HF_CONFIG)) and (
            os.path.isfile(os.path.join(path, HF_SAFETENSORS))
            or os.path.isfile(os.path.join(path, HF_PYTORCH))
        ):
            return "hf"
        return None
    if os.path.isfile(path + ".index"):
        return "google"
    return None


def google_prefix(directory):
    """The checkpoint prefix in a Google BERT directory, or None."""
    preferred = os.path.join(directory, GOOGLE_CKPT)
    if os.path.isfile(preferred + ".index"):
        return preferred
    indexes = sorted(f for f in os.listdir(directory) if f.endswith(".index"))
    if len(indexes) == 1:
        return os.path.join(directory, indexes[0][: -len(".index")])
    return None


def directory_of(path):
    """The directory holding the files of `path` (itself, or a checkpoint prefix's)."""
    path = os.fspath(path)
    return path if os.path.isdir(path) else (os.path.dirname(path) or ".")
