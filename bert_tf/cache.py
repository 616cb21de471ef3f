"""Where bert-tf keeps files it derives once and reuses (`$BERT_TF_CACHE`, default
`~/.cache/bert_tf`): e.g. the tokenizer's character table, and the demo assets of demo_data/."""

import os


def cache_dir():
    """The cache directory, created if missing."""
    path = os.environ.get("BERT_TF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "bert_tf"
    )
    os.makedirs(path, exist_ok=True)
    return path
