"""WordPiece vocab files: loading, special tokens, casing.

A vocab file holds one token per line; a token's id is its (0-based) line number, as in the
original BERT `load_vocab`. Continuation pieces start with "##".
"""

import os

from bert_tf.atomic_io import atomic_write_text
from bert_tf.errors import BertTfError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
SUFFIX_INDICATOR = "##"


class VocabError(BertTfError, ValueError):
    """A vocab file or list is unusable (missing, empty, lacking a special token)."""


def load_vocab(path):
    """Reads a vocab file -> list of tokens (index = id). Raises VocabError with one line
    naming the file and the problem."""
    if not os.path.isfile(path):
        raise VocabError(f"{path}: vocab file not found")
    try:
        with open(path, encoding="utf-8") as f:
            # Like the original: every line is a token, stripped of surrounding whitespace.
            tokens = [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise VocabError(f"{path}: vocab file is not UTF-8 ({e})") from None
    while tokens and not tokens[-1]:
        tokens.pop()  # trailing blank lines are not tokens
    if not tokens:
        raise VocabError(f"{path}: vocab file is empty")
    check_vocab(tokens, source=path)
    return tokens


def check_vocab(tokens, source="vocab"):
    """Checks a token list: non-empty, all special tokens present. (Duplicates are allowed:
    as in the original BERT, the last occurrence of a token gives its id.)"""
    if not tokens:
        raise VocabError(f"{source}: vocab is empty")
    present = set(tokens)
    for token in SPECIAL_TOKENS:
        if token not in present:
            raise VocabError(
                f"{source}: vocab has no {token} token (need all of {' '.join(SPECIAL_TOKENS)})"
            )
    return tokens


def unique_for_matching(tokens):
    """The token list with every earlier duplicate replaced by a placeholder that can never
    match a word (it holds a space), so that matching yields the last occurrence's id."""
    last = {t: i for i, t in enumerate(tokens)}
    return [t if last[t] == i else f" duplicate {i}" for i, t in enumerate(tokens)]


def special_token_ids(tokens):
    """-> dict pad_id, unk_id, cls_id, sep_id, mask_id."""
    index = {t: i for i, t in enumerate(tokens)}
    return {
        "pad_id": index[PAD],
        "unk_id": index[UNK],
        "cls_id": index[CLS],
        "sep_id": index[SEP],
        "mask_id": index[MASK],
    }


def infer_lower_case(tokens):
    """A vocab is uncased when no token (other than the bracketed special tokens) has an
    upper-case letter."""
    for token in tokens:
        if token.startswith("[") and token.endswith("]"):
            continue
        if token != token.lower():
            return False
    return True


def write_vocab(path, tokens):
    """Writes a token list, one per line (atomically)."""
    check_vocab(list(tokens), source=path)
    for token in tokens:
        if not token or token != token.strip() or "\n" in token:
            raise VocabError(f"{path}: token {token!r} is empty or has surrounding whitespace")
    atomic_write_text(path, "\n".join(tokens) + "\n")
