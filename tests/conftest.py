"""Shared fixtures: tiny configs, a tiny vocab, and the real MiniLM weights (fetched once)."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")

# A small uncased vocab that covers the tiny test sentences.
TINY_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
              + list(".,!?'-\"()") + list("abcdefghijklmnopqrstuvwxyz0123456789")
              + ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "is",
                 "hello", "world", "un", "##aff", "##able", "cafe", "resume", "##s", "##ing",
                 "##ed", "##ly", "good", "bad", "movie", "great", "terrible", "who", "what",
                 "where", "paris", "london", "france", "capital", "of", "in", "john", "lives"])


@pytest.fixture(scope="session")
def golden_minilm():
    return np.load(os.path.join(GOLDEN_DIR, "minilm_reference.npz"), allow_pickle=False)


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 Hugging Face directory (downloaded once, sha256-checked)."""
    from demo_data import assets
    return assets.minilm_dir()


@pytest.fixture
def tiny_vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n")
    return str(path)


@pytest.fixture
def tiny_config():
    from bert_tf import BertConfig
    return BertConfig.preset("tiny", vocab_size=len(TINY_VOCAB), num_layers=2, hidden_size=32,
                             num_heads=4, intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(autouse=True)
def _seed():
    import keras
    keras.utils.set_random_seed(1234)
