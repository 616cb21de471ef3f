"""The one error base class of bert-tf.

Every error the library raises on bad input or bad state derives from `BertTfError`; its
`str()` is one line that names the problem (file, line, field, expected vs got). The apps catch
`BertTfError` and print that line, nothing else. Subclasses keep a builtin base as a mixin
(`ValueError`, `RuntimeError`) so callers that caught those before still do.
"""


class BertTfError(Exception):
    """Base of every bert-tf error. `str(e)` is a single line meant for the user."""

    def __str__(self) -> str:
        text = super().__str__()
        # One line, always: a message built from a multi-line source (a TF error, a traceback
        # excerpt) is folded so the apps never print more than one line.
        return " ".join(text.split("\n")) if "\n" in text else text
