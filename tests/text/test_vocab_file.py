"""Vocab files: loading, one-line errors, special ids, casing inference; char table facts."""

import pytest

from bert_tf.text import char_table as ct
from bert_tf.text import vocab as vocab_lib


def test_load_and_special_ids(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[UNK]\n[PAD]\nhello\n[CLS]\n[SEP]\n[MASK]\n##s\n\n\n", encoding="utf-8")
    tokens = vocab_lib.load_vocab(str(path))
    assert tokens == ["[UNK]", "[PAD]", "hello", "[CLS]", "[SEP]", "[MASK]", "##s"]
    assert vocab_lib.special_token_ids(tokens) == {
        "pad_id": 1,
        "unk_id": 0,
        "cls_id": 3,
        "sep_id": 4,
        "mask_id": 5,
    }


def test_errors_name_file_and_token(tmp_path):
    with pytest.raises(vocab_lib.VocabError, match=r"missing\.txt: vocab file not found"):
        vocab_lib.load_vocab(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(vocab_lib.VocabError, match=r"empty\.txt: vocab file is empty"):
        vocab_lib.load_vocab(str(empty))
    no_mask = tmp_path / "no_mask.txt"
    no_mask.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(vocab_lib.VocabError, match=r"no_mask\.txt: vocab has no \[MASK\]") as e:
        vocab_lib.load_vocab(str(no_mask))
    assert "\n" not in str(e.value)


def test_infer_lower_case():
    specials = list(vocab_lib.SPECIAL_TOKENS) + ["[unused0]"]
    assert vocab_lib.infer_lower_case(specials + ["hello", "##ing", "über", "東"]) is True
    assert vocab_lib.infer_lower_case(specials + ["hello", "Hello"]) is False
    assert vocab_lib.infer_lower_case(specials + ["ÉCOLE"]) is False


def test_duplicates_resolve_to_last_occurrence():
    tokens = ["[PAD]", "[UNK]", "a", "[CLS]", "[SEP]", "[MASK]", "a"]
    assert vocab_lib.unique_for_matching(tokens)[2].startswith(" ")
    assert vocab_lib.unique_for_matching(tokens)[6] == "a"


@pytest.mark.parametrize(
    "cp,kind,punct",
    [
        (ord("a"), ct.KIND_NORMAL, False),
        (0x0000, ct.KIND_DROP, False),
        (0xFFFD, ct.KIND_DROP, False),
        (0x200B, ct.KIND_DROP, False),
        (ord("\t"), ct.KIND_SPACE, False),
        (0x3000, ct.KIND_SPACE, False),
        (0x2028, ct.KIND_SPACE, False),
        (ord("$"), ct.KIND_NORMAL, True),
        (ord("^"), ct.KIND_NORMAL, True),
        (0x00BF, ct.KIND_NORMAL, True),
        (0x4E2D, ct.KIND_CJK, False),
        (0x30AB, ct.KIND_NORMAL, False),  # katakana: not CJK
        (0x2F800, ct.KIND_CJK, False),
    ],
)
def test_char_table_classes(cp, kind, punct):
    entry = ct.lookup(cp)
    assert entry & ct.KIND_MASK == kind
    assert bool(entry & ct.PUNCT) == punct


def test_char_table_uncased_mapping():
    def mapped(ch):
        entry = ct.lookup(ord(ch))
        if entry & ct.MAP_EMPTY:
            return ""
        payload = entry >> ct.PAYLOAD_SHIFT
        if entry & ct.MAP_MULTI:
            t = ct.build()
            lo, hi = t["multi_splits"][payload], t["multi_splits"][payload + 1]
            return "".join(chr(c) for c in t["multi_values"][lo:hi])
        return chr(ord(ch) + payload)

    assert [mapped(c) for c in "AÉßİ\u0301™ﬁＡ"] == ["a", "e", "ß", "i", "", "™", "ﬁ", "ａ"]
    assert mapped("한") == "\u1112\u1161\u11ab"  # Hangul syllable -> jamo (NFD)
