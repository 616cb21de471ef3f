"""Finding and identifying input files: comma-separated glob patterns, remote paths, hashes.

A path with "://" (gs://, s3://, hdfs://, file://...) is read through TF's gfile; a local
path through the os module (`~` expanded), so reading local files does not load TF.
"""

import glob
import hashlib
import os


def is_remote(path):
    """A path on a file system only TF's gfile reads (gs://, s3://, hdfs://, ...)."""
    return "://" in str(path)


def gfile():
    # TF is imported only for remote paths: it is heavy, and local reads need plain open().
    import tensorflow as tf

    return tf.io.gfile


def split_patterns(patterns):
    """A comma-separated string or a list of patterns -> the non-blank patterns, stripped."""
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    return [p.strip() for p in patterns if p and p.strip()]


def match(pattern):
    """The sorted paths a glob pattern matches (remote patterns through gfile)."""
    if is_remote(pattern):
        return sorted(gfile().glob(pattern))
    return sorted(glob.glob(os.path.expanduser(pattern)))


def expand_patterns(patterns, no_match):
    """Each pattern's matches, in pattern order, without repeats. `no_match(pattern)` is the
    exception raised for a pattern that matches nothing."""
    files, seen = [], set()
    for pattern in split_patterns(patterns):
        matched = match(pattern)
        if not matched:
            raise no_match(pattern)
        for path in matched:
            if path not in seen:
                seen.add(path)
                files.append(path)
    return files


def is_dir(path):
    return gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def file_size(path):
    return gfile().stat(path).length if is_remote(path) else os.path.getsize(path)


def file_sha256(path, block=1 << 20):
    """The hex SHA-256 of a local file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()
