"""Errors of reading and writing model and checkpoint directories (one line each)."""

from bert_tf.errors import BertTfError


class ModelDirError(BertTfError, ValueError):
    """A model directory's file is missing a field or is not valid JSON."""


class ModelDirFileNotFoundError(BertTfError, FileNotFoundError):
    """A file the model directory needs is not there."""


class ModelDirWriteError(BertTfError, OSError):
    """A model directory file could not be written (e.g. the disk is full); the previous
    version of the file, if any, is unchanged."""


class CheckpointError(BertTfError, ValueError):
    """A checkpoint cannot be read or does not fit the model (one-line message)."""
