"""BertPreprocessor: strings -> packed BERT inputs, and `load_preprocessor(path)`.

pre = bert_tf.load_preprocessor("path/to/model_or_hf_or_google_dir", seq_length=128)
inputs = pre(tf.constant(["a sentence"]))              # single segment
inputs = pre([tf.constant(["a"]), tf.constant(["b"])]) # sentence pairs
# -> {"input_word_ids", "input_mask", "input_type_ids"}: int32 [B, seq_length]
"""

import os
from collections.abc import Sequence
from typing import Any, cast

import keras
import tensorflow as tf

from bert_tf.model_dir import ModelDir
from bert_tf.tensor_types import Tensor
from bert_tf.text import packer as packer_lib
from bert_tf.text.tokenizer import BertTokenizer

DEFAULT_SEQ_LENGTH = 128


@keras.saving.register_keras_serializable(package="bert_tf")
class BertPreprocessor(keras.layers.Layer):
    """Tokenizer + packer. Input: string [B], or a list/tuple of segment strings [B] (two for
    sentence pairs). Output: dict of int32 [B, T] input_word_ids / input_mask /
    input_type_ids, T = seq_length (or, with pad_to_longest=True, the batch longest, rounded
    up to a multiple of `pad_to_multiple_of`)."""

    def __init__(
        self,
        tokenizer: BertTokenizer | dict[str, Any] | None = None,
        vocab: Sequence[str] | None = None,
        vocab_file: str | None = None,
        lower_case: bool | None = None,
        seq_length: int = DEFAULT_SEQ_LENGTH,
        pad_to_longest: bool = False,
        pad_to_multiple_of: int = 1,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        if tokenizer is None:
            tokenizer = BertTokenizer(vocab=vocab, vocab_file=vocab_file, lower_case=lower_case)
        self.tokenizer = cast(BertTokenizer, tokenizer)  # (no dict any more)
        self.seq_length = int(seq_length)
        self.pad_to_longest = bool(pad_to_longest)
        self.pad_to_multiple_of = int(pad_to_multiple_of)
        self.built = True  # no weights

    @property
    def lower_case(self) -> bool:
        return self.tokenizer.lower_case

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def call(self, inputs: Tensor | Sequence[Tensor]) -> dict[str, Tensor]:
        segments = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not 1 <= len(segments) <= 8:
            raise ValueError(
                f"BertPreprocessor: expected 1 or 2 string tensors, got {len(segments)}"
            )
        pieces = [self.tokenizer.tokenize(tf.reshape(s, [-1])) for s in segments]
        return packer_lib.pack_inputs(
            pieces,
            self.seq_length,
            self.tokenizer.cls_id,
            self.tokenizer.sep_id,
            self.tokenizer.pad_id,
            self.pad_to_longest,
            self.pad_to_multiple_of,
        )

    # TF Hub preprocessor style: tokenize each segment, then pack any number of them.
    def tokenize(self, strings: Tensor) -> tf.RaggedTensor:
        """strings [B] -> int32 ragged [B, (words), (pieces)]."""
        return self.tokenizer.tokenize_words(tf.reshape(strings, [-1]))

    def bert_pack_inputs(
        self, segments: Sequence[tf.RaggedTensor], seq_length: int | None = None
    ) -> dict[str, Tensor]:
        """list of tokenized segments (ragged [B, (words), (pieces)] or [B, (pieces)]) ->
        dict of int32 [B, seq_length] encoder inputs (longest-first truncation)."""
        return packer_lib.pack_inputs(
            list(segments),
            seq_length or self.seq_length,
            self.tokenizer.cls_id,
            self.tokenizer.sep_id,
            self.tokenizer.pad_id,
            self.pad_to_longest,
            self.pad_to_multiple_of,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "seq_length": self.seq_length,
                "pad_to_longest": self.pad_to_longest,
                "pad_to_multiple_of": self.pad_to_multiple_of,
            }
        )
        return config


def find_vocab(path: str | os.PathLike[str]) -> tuple[str, bool | None, int | None]:
    """-> (vocab_file, lower_case or None, seq_length or None) for a bert-tf model dir, a
    Hugging Face BERT dir, a Google BERT dir, or a vocab file itself."""
    if os.path.isfile(path):
        return os.fspath(path), None, None
    return ModelDir(path).preprocessing()


def load_preprocessor(
    path: str | os.PathLike[str], seq_length: int | None = None, pad_to_longest: bool = False
) -> BertPreprocessor:
    """A BertPreprocessor for the vocab and casing of `path` (bert-tf model dir, Hugging Face
    dir, Google dir, or a vocab.txt). seq_length: default the model dir's recorded
    preprocessing.seq_length, else 128. Casing not recorded -> inferred from the vocab."""
    vocab_file, lower_case, dir_seq_length = find_vocab(path)
    if seq_length is None:
        seq_length = dir_seq_length or DEFAULT_SEQ_LENGTH
    return BertPreprocessor(
        vocab_file=vocab_file,
        lower_case=lower_case,
        seq_length=seq_length,
        pad_to_longest=pad_to_longest,
    )
