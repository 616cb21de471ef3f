"""build_vocab: learns frequent words, special tokens first, low [UNK] rate; the CLI."""

import collections
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from bert_tf.text import vocab as vocab_lib
from bert_tf.text import vocab_builder
from bert_tf.text.tokenizer import BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "The lazy dog sleeps; the quick fox runs away!",
    "Foxes and dogs: friends or enemies? The question remains.",
    "A quick question about the brown dogs and the quick foxes.",
    "Running, jumping, sleeping and dreaming: the dog's day.",
    "Café RÉSUMÉ naïve — the FOX jumped over the DOGS again.",
] * 20


@pytest.fixture
def corpus_files(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f"part-{i}.txt"
        path.write_text("\n\n".join(CORPUS[i::2]) + "\n", encoding="utf-8")
        paths.append(str(path))
    return str(tmp_path / "part-*.txt"), paths


def test_learns_frequent_words_special_tokens_first(corpus_files):
    pattern, _ = corpus_files
    tokens, stats = vocab_builder.build_vocab(
        [pattern], vocab_size=90, lower_case=True, min_frequency=2
    )
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(tokens) == len(set(tokens)) == 90 == stats["vocab_size"]
    assert stats["files"] == 2 and stats["words"] > 1000
    for word in ("the", "quick", "fox", "dog", "lazy"):
        assert word in tokens, word
    assert "café" not in tokens and "The" not in tokens  # uncased: lowered, no accents
    assert {"e", "##e", "r", "##s"} <= set(tokens)
    tok = BertTokenizer(vocab=tokens, lower_case=True)
    ids = tok.tokenize(tf.constant(CORPUS)).flat_values.numpy()
    assert (ids == tok.unk_id).mean() < 0.01
    # Frequent words are single pieces.
    assert tok.tokenize(tf.constant(["the quick fox"])).to_list()[0] == [
        tokens.index("the"),
        tokens.index("quick"),
        tokens.index("fox"),
    ]


def test_cased_and_word_counts_match_tokenizer(corpus_files):
    _, paths = corpus_files
    counts = vocab_builder.count_words(
        vocab_builder.iter_lines(paths), lower_case=False, batch_size=7
    )
    splitter = BertTokenizer(vocab=list(vocab_lib.SPECIAL_TOKENS), lower_case=False)
    expected = collections.Counter(
        w.decode() for w in splitter.split_words(tf.constant(CORPUS)).flat_values.numpy()
    )
    assert counts == expected and counts["The"] == 60 and counts["RÉSUMÉ"] == 20
    tokens, _ = vocab_builder.build_vocab(paths, vocab_size=150, lower_case=False)
    assert "The" in tokens and "the" in tokens


def test_errors(tmp_path, corpus_files):
    pattern, _ = corpus_files
    with pytest.raises(vocab_builder.VocabBuildError, match="no input file matches"):
        vocab_builder.build_vocab([str(tmp_path / "nothing-*.txt")], vocab_size=100)
    with pytest.raises(vocab_builder.VocabBuildError, match="character tokens"):
        vocab_builder.build_vocab([pattern], vocab_size=20)


def test_cli(corpus_files, tmp_path):
    pattern, _ = corpus_files
    out = tmp_path / "vocab.txt"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [
        sys.executable,
        "-m",
        "apps.build_vocab",
        f"--input_files={pattern}",
        f"--output={out}",
        "--vocab_size=70",
        "--max_lines=60",
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["vocab_size"] == 70
    assert vocab_lib.load_vocab(str(out))[:5] == list(vocab_lib.SPECIAL_TOKENS)
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "exists" in again.stderr.strip().splitlines()[-1]
