"""The TFLite-able pieces of the exact tokenizer: UTF-8 decode/encode with integer ops, the
n-gram string join, and the tokenizer under TensorFlow's own custom-op interpreter."""

import random

import numpy as np

from tests.conftest import TINY_VOCAB


def random_bytes(n, seed=0):
    """Byte strings rich in UTF-8 edge cases: truncated, overlong, surrogates, > U+10FFFF."""
    rng = random.Random(seed)
    pieces = [
        b"a",
        b" ",
        b"\xc3\xa9",
        b"\xe2\x82\xac",
        b"\xf0\x9f\x98\x80",
        b"\x80",
        b"\xbf",
        b"\xc0\xaf",
        b"\xc1",
        b"\xc2",
        b"\xe0\x80\xaf",
        b"\xe0\xa0",
        b"\xed\xa0\x80",
        b"\xed\x9f\xbf",
        b"\xf0\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf4\x8f\xbf\xbf",
        b"\xf5",
        b"\xff",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xf0\x9f",
    ]
    return [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def test_decode_matches_python_replace_and_encode_round_trips():
    import tensorflow as tf

    from bert_tf.serving_graph.tflite_text import decode_utf8, encode_utf8

    spec = [tf.TensorSpec([None], tf.int32)]
    decode_utf8 = tf.function(decode_utf8, input_signature=spec)
    encode_utf8 = tf.function(encode_utf8, input_signature=spec)
    for raw in random_bytes(300) + [b"", "héllo €😀 中文".encode()]:
        b = tf.constant(list(raw), tf.int32)
        cps, first = decode_utf8(b)
        text = raw.decode("utf-8", "replace")
        assert cps.numpy().tolist() == [ord(c) for c in text], raw
        # each character starts where Python's incremental decoding puts it
        assert len(first.numpy()) == len(text)
        out, src, n = encode_utf8(cps)
        assert bytes(out.numpy().tolist()) == text.encode("utf-8"), raw
        assert n.numpy().tolist() == [len(c.encode()) for c in text]


def test_join_groups_concatenates_any_group_length_up_to_512():
    import tensorflow as tf

    from bert_tf.serving_graph.tflite_text import join_groups

    rng = np.random.RandomState(0)
    letters = [chr(ord("a") + i % 26) for i in range(2000)]
    lengths = [0, 1, 7, 8, 9, 63, 64, 65, 100, 400, 511, 512]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
    rng.shuffle(letters)
    got = join_groups(
        tf.constant(letters[: sum(lengths)] + [""]),
        tf.constant(starts),
        tf.constant(lengths, tf.int32),
    ).numpy()
    want = ["".join(letters[s : s + n]) for s, n in zip(starts, lengths)]
    assert [g.decode() for g in got] == want


def test_tokenizer_runs_under_tensorflows_interpreter_and_refuses_batches():
    import pytest
    import tensorflow as tf
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps
    from tensorflow_text.core.pybinds import tflite_registrar

    from bert_tf.text.tokenizer import BertTokenizer
    from export.tflite import tokenizer_tflite

    vocab = list(TINY_VOCAB)
    interp = InterpreterWithCustomOps(
        model_content=tokenizer_tflite(vocab, True),
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS,
    )
    run = interp.get_signature_runner("serving_default")
    exact = BertTokenizer(vocab=vocab, lower_case=True)
    for text in ["Hello world, unaffable Café!", "a\x00b ΑΣ.Β ﬁ™ 中文", "", b"\xff\xfeab\xc3"]:
        raw = text if isinstance(text, bytes) else text.encode()
        out = run(text=np.array([raw]))
        ids, begin, end = exact.tokenize_with_offsets(tf.constant([raw]))
        assert out["ids"].tolist() == ids.to_list()[0]
        assert out["byte_start"].tolist() == begin.to_list()[0]
        assert out["byte_end"].tolist() == end.to_list()[0]
    with pytest.raises(RuntimeError, match="RESHAPE"):
        run(text=np.array([b"a", b"b"]))
