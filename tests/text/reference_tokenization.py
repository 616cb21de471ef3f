"""Pure-Python reference of the original BERT tokenizer (google-research/bert tokenization.py).

Written from the algorithm's rules for the tests; string-level, one character at a time,
deliberately structured like the original (clean -> CJK spacing -> whitespace split -> lower +
NFD + strip Mn per token -> punctuation split -> WordPiece), not like the in-graph tokenizer.
"""

import unicodedata


def is_whitespace(ch):
    return ch in (" ", "\t", "\n", "\r") or unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def clean_text(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def space_cjk(text):
    out = []
    for ch in text:
        if is_cjk(ord(ch)):
            out.extend([" ", ch, " "])
        else:
            out.append(ch)
    return "".join(out)


def strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def split_on_punctuation(text):
    words, current = [], []
    for ch in text:
        if is_punctuation(ch):
            if current:
                words.append("".join(current))
                current = []
            words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def basic_tokenize(text, lower_case):
    text = space_cjk(clean_text(text))
    words = []
    for token in text.split():
        if lower_case:
            token = strip_accents(token.lower())
        words.extend(split_on_punctuation(token))
    return " ".join(words).split()


def wordpiece(word, vocab_index, unk="[UNK]", max_chars=100):
    chars = list(word)
    if len(chars) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(chars):
        end, found = len(chars), None
        while start < end:
            piece = "".join(chars[start:end])
            if start > 0:
                piece = "##" + piece
            if piece in vocab_index:
                found = piece
                break
            end -= 1
        if found is None:
            return [unk]
        pieces.append(found)
        start = end
    return pieces


class ReferenceTokenizer:
    def __init__(self, vocab, lower_case):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.lower_case = lower_case

    def tokenize_words(self, text):
        """-> list of words, each a list of WordPiece strings."""
        return [wordpiece(w, self.index) for w in basic_tokenize(text, self.lower_case)]

    def tokenize(self, text):
        return [p for word in self.tokenize_words(text) for p in word]

    def ids(self, text):
        return [self.index[p] for p in self.tokenize(text)]


def truncate_seq_pair(tokens_a, tokens_b, max_length):
    """The original's `_truncate_seq_pair`, in place."""
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()
