"""What a recipe hands back to its caller as it found it (a library must not change its
caller's process): the root logger (handlers, level) and the global random state.

    with preserved_caller_state():
        ...   # keras.utils.set_random_seed(config.seed), training, logging ...

Saved on entry and put back on exit, also when the run raises:
  * logging: the root logger's handlers and level (a handler the run added is removed and
    closed; one it removed comes back);
  * Python's `random` state and NumPy's global RNG state (`np.random.get_state()`);
  * TF's global seed (`tf.random.set_seed`) and the op-seed sequence derived from it, and
    the state of TF's global generator (`tf.random.get_global_generator()`) if it exists;
  * Keras' global seed and global SeedGenerator (`keras.random` calls without a seed).
Not restorable: `tf.random.set_seed` also resets the per-op counters of stateful random ops
created before the run (TF clears its kernel cache); no public or private API reads them.

Private members relied on (TF 2.21, Keras 3.15; tests/apps/test_python_api.py checks the
whole state before and after a real run): `context.context()._seed` / `._rng` (the eager
global seed and the generator of op seeds), `stateful_random_ops.global_generator`, Keras'
`global_state` attributes "global_random_seed" and "global_seed_generator".
"""

import contextlib
import logging
import random

import numpy as np
from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils import rng_utils
from tensorflow.python.eager import context
from tensorflow.python.ops import stateful_random_ops

_KERAS_KEYS = (rng_utils.GLOBAL_RANDOM_SEED, seed_generator.GLOBAL_SEED_GENERATOR)


def _save():
    root = logging.getLogger()
    ctx = context.context()
    generator = stateful_random_ops.global_generator
    return {
        "handlers": list(root.handlers),
        "level": root.level,
        "random": random.getstate(),
        "numpy": np.random.get_state(),
        "tf_seed": (ctx._seed, ctx._rng.getstate() if ctx._seed is not None else None),
        "tf_generator": (generator, None if generator is None else generator.state.numpy()),
        "keras": {k: global_state.get_global_attribute(k) for k in _KERAS_KEYS},
    }


def _restore_logging(handlers, level):
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _restore(saved):
    _restore_logging(saved["handlers"], saved["level"])
    random.setstate(saved["random"])
    np.random.set_state(saved["numpy"])
    ctx = context.context()
    seed, rng_state = saved["tf_seed"]
    if seed is None:  # as TF starts: no seed, and no op-seed generator (`_rng` unset)
        ctx._seed = None
        if hasattr(ctx, "_rng"):
            del ctx._rng
    else:
        ctx._set_global_seed(seed)
        ctx._rng.setstate(rng_state)
    generator, state = saved["tf_generator"]
    stateful_random_ops.global_generator = generator
    if generator is not None:
        generator.reset(state)
    for key, value in saved["keras"].items():
        global_state.set_global_attribute(key, value)


@contextlib.contextmanager
def preserved_caller_state():
    """Saves the caller's logging and random state; puts it back on exit (module doc)."""
    saved = _save()
    try:
        yield
    finally:
        _restore(saved)
