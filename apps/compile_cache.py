"""TF's persistent XLA compilation cache, kept in bert-tf's cache directory: importing this
module turns it on for the process (`DIRECTORY`), so the training apps import it before
anything loads TensorFlow (set later, the flag was measured to have no effect in apps.finetune).

The fused training kernels (`bert_tf.layers.fused`) and AdamW's one-pass update
(`bert_tf.training.optimization`) are compiled by XLA at run time, once per shape: on 2 AVX2
cores ~1.1 s for each new packed-batch shape and ~0.15 s for each variable shape, some 15-25 s
of a short fine-tuning job. With the cache on, a later run on the same machine loads the
compiled kernels instead of compiling them again. TF writes each entry to a temporary file
and renames it into place, and loads an entry only if its HLO equals the kernel's.

There is one directory per TensorFlow version and host CPU (model name and instruction-set
flags): a kernel compiled for one CPU's instructions must never run on another, e.g. when a
home directory is shared by several machines. `$BERT_TF_XLA_CACHE=0` turns the cache off; any
other value is the directory to use. Deleting the directory is always safe.
"""

import hashlib
import importlib.metadata
import os
import platform
import tempfile

ENV = "BERT_TF_XLA_CACHE"
_FLAG = "--tf_xla_persistent_cache_directory"


def host_key():
    """A short hash of this machine's CPU model and instruction-set flags."""
    lines = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    lines.append(line.strip())
                elif not line.strip() and lines:
                    break  # the first processor's block is enough
    except OSError:
        pass
    if not lines:
        lines = [platform.machine(), platform.processor()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def default_directory():
    """<$BERT_TF_CACHE (bert_tf.cache)>/xla-tf<version>-<host_key()>, found without importing
    TensorFlow."""
    base = os.environ.get("BERT_TF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "bert_tf"
    )
    version = importlib.metadata.version("tensorflow")
    return os.path.join(base, f"xla-tf{version}-{host_key()}")


def enable():
    """Points TF's persistent XLA cache at bert-tf's directory for this process (by adding
    the flag to $TF_XLA_FLAGS) and returns the directory; None when $BERT_TF_XLA_CACHE is
    "0", when $TF_XLA_FLAGS already names a cache directory (the user's choice stands) or
    when the directory cannot be written (TF would then fail every compile: no cache).

    Call it before TensorFlow is imported (this module's import does)."""
    setting = os.environ.get(ENV, "")
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if setting == "0" or _FLAG in flags:
        return None
    directory = os.path.abspath(setting or default_directory())
    if '"' in directory or not _writable(directory):
        return None  # TF would fail every compile that cannot be saved there
    # quoted: TF splits TF_XLA_FLAGS at spaces outside quotes (a home dir may hold one)
    os.environ["TF_XLA_FLAGS"] = f'{flags} {_FLAG}="{directory}"'.strip()
    return directory


def _writable(directory):
    """Whether `directory` exists or can be made, and takes a new file."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError:
        return False
    return True


DIRECTORY = enable()
