"""Per-code-point facts of the original BERT tokenizer, as a compact lookup table for the graph.

The original BERT BasicTokenizer (google-research/bert tokenization.py) works character by
character: it drops control characters, turns whitespace into spaces, puts spaces around CJK
ideographs, and for uncased models lower-cases, NFD-decomposes and strips combining marks (Mn)
before splitting on punctuation. Every one of those decisions depends only on the code point
(except Greek final sigma, handled in the graph from the `cased`/`case_ignorable` bits), so we
compute them once in Python with `unicodedata` and ship them to the graph as a two-level table:

    entry = table_data[table_index[cp >> BLOCK_BITS] * BLOCK + (cp & (BLOCK - 1))]
    flags = entry & FLAG_MASK;  payload = entry >> PAYLOAD_SHIFT

flags: KIND (2 bits: NORMAL, DROP, SPACE, CJK), PUNCT, CASED, CASE_IGNORABLE, MAP_EMPTY, MAP_MULTI.
payload (uncased normalization of the code point = strip_Mn(NFD(lower(cp)))):
    MAP_EMPTY:  normalizes to nothing (a combining mark, ...)
    MAP_MULTI:  index into (multi_splits, multi_values), a ragged list of code points
    otherwise:  delta: normalized code point = cp + payload
"""

import functools
import hashlib
import io
import os
import unicodedata

import numpy as np

from bert_tf.atomic_io import atomic_write_bytes
from bert_tf.cache import cache_dir

MAX_CODE_POINT = 0x10FFFF
BLOCK_BITS = 7
BLOCK = 1 << BLOCK_BITS

KIND_NORMAL, KIND_DROP, KIND_SPACE, KIND_CJK = 0, 1, 2, 3
KIND_MASK = 3
PUNCT = 1 << 2
CASED = 1 << 3
CASE_IGNORABLE = 1 << 4
MAP_EMPTY = 1 << 5
MAP_MULTI = 1 << 6
FLAG_MASK = (1 << 7) - 1
PAYLOAD_SHIFT = 7

CAPITAL_SIGMA, SMALL_SIGMA, FINAL_SIGMA = 0x03A3, 0x03C3, 0x03C2

# The original's _is_chinese_char ranges (CJK Unified Ideographs and extensions, compatibility).
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_punctuation(cp, category):
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return category.startswith("P")


def _kind(cp, ch, category):
    if cp == 0 or cp == 0xFFFD or (category.startswith("C") and ch not in "\t\n\r"):
        return KIND_DROP
    # Whitespace for the original: " \t\n\r" and Zs; plus whatever else str.split() splits
    # on and survives control removal (U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR).
    if ch in " \t\n\r" or category == "Zs" or ch.isspace():
        return KIND_SPACE
    if any(lo <= cp <= hi for lo, hi in CJK_RANGES):
        return KIND_CJK
    return KIND_NORMAL


def _uncased(ch):
    """strip_Mn(NFD(lower(ch))) for one character, as the original does per token."""
    return "".join(
        c for c in unicodedata.normalize("NFD", ch.lower()) if unicodedata.category(c) != "Mn"
    )


TABLE_VERSION = 1
_ARRAYS = ("index", "data", "multi_splits", "multi_values")


def _cache_path():
    """Keyed by the Unicode data version and this file's contents (a rule change here
    never reads a stale table)."""
    with open(__file__, "rb") as f:
        source = hashlib.sha256(f.read()).hexdigest()[:16]
    return os.path.join(
        cache_dir(), f"char_table-v{TABLE_VERSION}-ucd{unicodedata.unidata_version}-{source}.npz"
    )


@functools.lru_cache(maxsize=1)
def build():
    """-> dict of numpy arrays: index (int32 [blocks]), data (int32 [unique_blocks * BLOCK]),
    multi_splits, multi_values (int32), plus `unidata_version`.

    Computing it takes a few seconds, so it is cached on disk (keyed by the Unicode data
    version) and in memory."""
    try:
        path = _cache_path()
    except OSError:
        return _compute()
    try:
        with np.load(path) as cached:
            table = {k: cached[k] for k in _ARRAYS}
        table["unidata_version"] = unicodedata.unidata_version
        return table
    except (OSError, KeyError, ValueError):
        pass
    table = _compute()
    buffer = io.BytesIO()
    np.savez(buffer, **{k: table[k] for k in _ARRAYS})
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # a read-only cache only costs the recomputation
    return table


def _compute():
    entries = np.zeros(MAX_CODE_POINT + 1, dtype=np.int64)
    multi = []
    sigma_probe = "\u03a3"
    for cp in range(MAX_CODE_POINT + 1):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category in ("Cn", "Co", "Cs"):
            entries[cp] = KIND_DROP | MAP_EMPTY
            continue
        flags = _kind(cp, ch, category)
        if _is_punctuation(cp, category):
            flags |= PUNCT
        # Python's str.lower() final-sigma rule, probed through str.lower itself:
        # cased(c) <=> "cΣ" lowers to a final sigma; ignorable(c) <=> "AcΣ" does while c
        # itself is not cased.
        if (ch + sigma_probe).lower()[-1] == "\u03c2":
            flags |= CASED
        elif ("A" + ch + sigma_probe).lower()[-1] == "\u03c2":
            flags |= CASE_IGNORABLE
        payload = 0
        if flags & KIND_MASK in (KIND_NORMAL, KIND_CJK):
            out = _uncased(ch)
            if not out:
                flags |= MAP_EMPTY
            elif len(out) == 1:
                payload = ord(out) - cp
            else:
                flags |= MAP_MULTI
                payload = len(multi)
                multi.append([ord(c) for c in out])
        else:
            flags |= MAP_EMPTY
        entries[cp] = (payload << PAYLOAD_SHIFT) | flags
    assert np.abs(entries).max() < 2**31
    blocks = entries.reshape(-1, BLOCK).astype(np.int32)
    unique, index = np.unique(blocks, axis=0, return_inverse=True)
    splits = np.zeros(len(multi) + 1, dtype=np.int32)
    splits[1:] = np.cumsum([len(m) for m in multi])
    values = np.array([c for m in multi for c in m], dtype=np.int32)
    return {
        "index": index.reshape(-1).astype(np.int32),
        "data": unique.reshape(-1).astype(np.int32),
        "multi_splits": splits,
        "multi_values": values,
        "unidata_version": unicodedata.unidata_version,
    }


def lookup(cp):
    """Python-side lookup of one code point's entry (for tests and debugging)."""
    t = build()
    return int(t["data"][t["index"][cp >> BLOCK_BITS] * BLOCK + (cp & (BLOCK - 1))])
