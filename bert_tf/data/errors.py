"""The error every task-data reader raises: one line naming the file, line and field."""

from bert_tf.errors import BertTfError


class DataError(BertTfError, ValueError):
    """Bad input data. `str(e)` is a single line: "<file>:<line>: <field>: <problem>"."""

    def __init__(self, path, message, line=None, field=None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        what = f"{field}: " if field else ""
        super().__init__(f"{where}: {what}{message}")
        self.path, self.line, self.field = path, line, field
