"""What the JSON files of Hugging Face and Google BERT directories say: the encoder config
and the vocab's casing (their tensors are read by bert_tf/checkpoints/sources.py); and an
encoder config given as any of the JSON files."""

import os

from bert_tf.atomic_io import atomic_write_json
from bert_tf.config import BertConfig
from bert_tf.model_dir import layout
from bert_tf.model_dir.errors import CheckpointError
from bert_tf.model_dir.json_files import read_json


def encoder_config_from(values, path):
    """A `BertConfig` from a Hugging Face config.json / Google bert_config.json dict."""
    try:
        return BertConfig.from_hf_dict(values)
    except KeyError as e:
        raise CheckpointError(f"{path}: missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None


def hf_encoder_config(directory):
    """The encoder config of a Hugging Face BERT directory (only absolute-position BERT)."""
    config_path = os.path.join(directory, layout.HF_CONFIG)
    values = read_json(config_path, CheckpointError, "Hugging Face config")
    model_type = values.get("model_type", "bert")
    if model_type != "bert":
        raise CheckpointError(f"{config_path}: model_type {model_type!r}, expected 'bert'")
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(
            f"{config_path}: position_embedding_type "
            f"{values['position_embedding_type']!r}, expected 'absolute'"
        )
    return encoder_config_from(values, config_path)


def google_encoder_config(path):
    """The encoder config of a Google BERT directory or checkpoint prefix."""
    config_path = os.path.join(layout.directory_of(path), layout.GOOGLE_CONFIG)
    return encoder_config_from(
        read_json(config_path, CheckpointError, "Google BERT config"), config_path
    )


def tokenizer_config_lower_case(tokenizer_config):
    """do_lower_case of a Hugging Face tokenizer_config.json, or None when it has none.
    ValueError (one line, naming the file) when it cannot be read."""
    if not os.path.isfile(tokenizer_config):
        return None
    try:
        value = read_json(tokenizer_config).get("do_lower_case")
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{tokenizer_config}: unreadable ({e})") from None
    return value if isinstance(value, bool) else None


def casing_from_name(path):
    """Google's directory names say the casing: uncased_L-12_H-768_A-12, cased_..."""
    name = os.path.basename(os.path.normpath(path)).lower()
    if "uncased" in name:
        return True
    if "cased" in name:
        return False
    return None


def declared_lower_case(directory):
    """The casing a Hugging Face or Google directory declares (tokenizer_config.json's
    do_lower_case; a Google directory's name), or None."""
    lower_case = tokenizer_config_lower_case(os.path.join(directory, layout.HF_TOKENIZER_CONFIG))
    if lower_case is None and os.path.isfile(os.path.join(directory, layout.GOOGLE_CONFIG)):
        lower_case = casing_from_name(directory)
    return lower_case


def vocab_looks_uncased(vocab_file):
    """True when (almost) no vocab entry has an upper-case letter ([CLS]-style tokens aside);
    None without a vocab file. Tolerant of a few cased entries, as published vocabs have."""
    if not vocab_file or not os.path.isfile(vocab_file):
        return None
    with open(vocab_file, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    upper = sum(
        1
        for t in tokens
        if not (t.startswith("[") and t.endswith("]")) and any(c.isupper() for c in t)
    )
    return upper <= max(10, len(tokens) // 1000)


def infer_lower_case(vocab_file, tokenizer_config=None):
    """Whether the vocab is uncased: tokenizer_config.json's do_lower_case if given and
    readable, else what the vocab looks like."""
    if tokenizer_config:
        try:
            value = tokenizer_config_lower_case(tokenizer_config)
        except CheckpointError:
            value = None
        if value is not None:
            return value
    return vocab_looks_uncased(vocab_file)


def encoder_values_from_json(path):
    """The `BertConfig` dict in the JSON file `path`: a bert-tf config.json, a Hugging Face
    config.json, a Google bert_config.json, or a plain `BertConfig` JSON."""
    values = read_json(path)
    if "encoder" in values and values.get("format") == layout.FORMAT:
        return values["encoder"]  # a bert-tf model dir's config
    if "num_hidden_layers" in values:  # Google / Hugging Face
        return BertConfig.from_hf_dict(values).to_dict()
    return values


# ---- writing (bert_tf/checkpoints/writers.py builds the values) ------------------------
def write_hf_config(directory, values):
    atomic_write_json(os.path.join(directory, layout.HF_CONFIG), values)


def write_google_config(directory, values):
    atomic_write_json(os.path.join(directory, layout.GOOGLE_CONFIG), values)


_SPECIAL_TOKENS = (
    ("unk_token", "[UNK]"),
    ("sep_token", "[SEP]"),
    ("pad_token", "[PAD]"),
    ("cls_token", "[CLS]"),
    ("mask_token", "[MASK]"),
)


def write_hf_tokenizer_files(directory, vocab_file, lower_case, max_length):
    """tokenizer_config.json + special_tokens_map.json for transformers' BertTokenizer(Fast):
    the original BERT casing rules (lower-casing and accent stripping together, CJK characters
    split), truncation at the model's positions, and the special tokens the vocab holds."""
    with open(vocab_file, encoding="utf-8") as f:
        vocab = {line.rstrip("\n") for line in f}
    special = {key: token for key, token in _SPECIAL_TOKENS if token in vocab}
    atomic_write_json(
        os.path.join(directory, layout.HF_TOKENIZER_CONFIG),
        {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": bool(lower_case),
            "strip_accents": bool(lower_case),
            "tokenize_chinese_chars": True,
            "do_basic_tokenize": True,
            "model_max_length": int(max_length),
            "padding_side": "right",
            "truncation_side": "right",
            "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
            "clean_up_tokenization_spaces": True,
            **special,
        },
    )
    atomic_write_json(os.path.join(directory, layout.HF_SPECIAL_TOKENS_MAP), special)
