"""The TFLite export's errors (each printed as one line by the commands)."""

from bert_tf.errors import BertTfError


class TFLiteExportError(BertTfError, ValueError):
    """Bad input or a conversion that lost the weights, reported in one line."""


class TFLiteBatchError(BertTfError, ValueError):
    """Inputs of one call with different numbers of rows."""


class TFLiteInputError(BertTfError, ValueError):
    """An input the converted graph cannot take (checked before the interpreter runs)."""
