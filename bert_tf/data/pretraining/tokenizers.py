"""Tokenizers for pre-training data creation: picklable factories, called once per worker
process, that return `tokenize_batch(list[str]) -> list[list[int]]`."""

import os

import tensorflow as tf

from bert_tf.data.pretraining.config import PretrainingDataError
from bert_tf.input_files import file_sha256
from bert_tf.text import vocab as vocab_lib
from bert_tf.text.tokenizer import BertTokenizer


def read_vocab(vocab_file):
    """The vocab as a list of tokens (line i = id i), with a one-line error if unusable
    (missing file, no special tokens, duplicates)."""
    try:
        return vocab_lib.load_vocab(vocab_file)
    except vocab_lib.VocabError as e:
        raise PretrainingDataError(str(e)) from None


_TOKENIZER_CACHE: dict = {}


class BertTokenizerFactory:
    """Picklable recipe for the project's BertTokenizer; called once in each worker, it
    returns `tokenize_batch(list[str]) -> list[list[int]]`."""

    def __init__(self, vocab_file, lower_case=None):
        self.vocab_file = vocab_file
        self.lower_case = lower_case  # None: inferred from the vocab

    def __call__(self):
        key = (os.path.abspath(self.vocab_file), file_sha256(self.vocab_file), self.lower_case)
        if key not in _TOKENIZER_CACHE:  # building + tracing takes seconds: once per process
            _TOKENIZER_CACHE[key] = self._build()
        return _TOKENIZER_CACHE[key]

    def _build(self):
        tokenizer = BertTokenizer(vocab_file=self.vocab_file, lower_case=self.lower_case)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def run(strings):
            return tokenizer.tokenize(strings)

        def tokenize_batch(lines):
            if not lines:
                return []
            ragged = run(tf.constant(lines))
            return [row.tolist() for row in _ragged_rows(ragged)]

        return tokenize_batch


def _ragged_rows(ragged):
    values = ragged.flat_values.numpy()
    splits = ragged.row_splits.numpy()
    return [values[splits[i] : splits[i + 1]] for i in range(len(splits) - 1)]


class PretokenizedFactory:
    """For text that is already WordPiece-tokenized (pieces separated by spaces): looks each
    piece up in the vocab, [UNK] if absent. Pure Python, also a handy test stand-in."""

    def __init__(self, vocab_file, lower_case=False):
        self.vocab_file = vocab_file
        self.lower_case = lower_case

    def __call__(self):
        vocab = {t: i for i, t in enumerate(read_vocab(self.vocab_file))}
        unk = vocab["[UNK]"]
        lower = self.lower_case

        def tokenize_batch(lines):
            return [
                [vocab.get(p, unk) for p in (line.lower() if lower else line).split()]
                for line in lines
            ]

        return tokenize_batch
