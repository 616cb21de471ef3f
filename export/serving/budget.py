"""The per-request budget of the serving signatures, in the units that cost, checked in the
graph before the work it bounds (INVALID_ARGUMENT otherwise):

  bytes   the UTF-8 bytes of all input strings of a request, checked before anything reads
          them (tokenization grows with bytes: a 50 MB text took 65 s and 7 GB to tokenize);
          tf.strings.length(unit="BYTE") reads no text, so the check costs O(strings)
  tokens  the model batch rows a request causes x seq_length (rows: windows of a long text,
          one per text pair, B x C for multiple choice), checked before the encoder; a lower
          bound (one row per example, B x C for multiple choice) is checked before
          tokenization, so a request of too many texts or choices is refused unread

The defaults answer a 10,000-word English text in one request at any seq_length (about 13,000
word pieces: at most ~40,000 tokens with windows half a window apart) and refuse a 50 MB one
before it is read. Set by export.saved_model --max_request_bytes / --max_request_tokens,
recorded in assets.extra/export_settings.json.
"""

import tensorflow as tf

DEFAULT_MAX_REQUEST_BYTES = 262_144  # 256 KiB of text per request
DEFAULT_MAX_REQUEST_TOKENS = 65_536  # model batch rows x seq_length per request

_ADVICE = "send shorter texts or fewer texts per request"


def _depending_on(check, tensors):
    with tf.control_dependencies([check]):
        return [tf.identity(t) for t in tensors]


def check_bytes(strings, max_bytes, what):
    """strings: string tensors of one request (any shapes) -> the same tensors, made to depend
    on: their bytes in total <= max_bytes ("<what> request is N bytes of text; ...")."""
    total = tf.add_n(
        [tf.reduce_sum(tf.cast(tf.strings.length(s, unit="BYTE"), tf.int64)) for s in strings]
    )
    check = tf.debugging.Assert(
        total <= max_bytes,
        [
            tf.strings.format(
                f"{what} request is {{}} bytes of text; this export reads at most {max_bytes} per "
                f"request (export.saved_model --max_request_bytes): {_ADVICE}",
                total,
            )
        ],
    )
    return _depending_on(check, strings)


def check_tokens(rows, seq_length, max_tokens, what, tensors, unit="windows"):
    """rows: int scalar, the model batch rows of the request (or a lower bound of them) ->
    `tensors`, made to depend on: rows x seq_length <= max_tokens ("<what> request needs N
    tokens (R <unit> x seq_length S); ...": the task names its rows, e.g. "choices")."""
    rows = tf.cast(rows, tf.int64)
    tokens = rows * seq_length
    check = tf.debugging.Assert(
        tokens <= max_tokens,
        [
            tf.strings.format(
                f"{what} request needs {{}} tokens ({{}} {unit} x seq_length "
                f"{seq_length}); this export answers at most {max_tokens} per request "
                f"(export.saved_model --max_request_tokens): {_ADVICE}",
                [tokens, rows],
            )
        ],
    )
    return _depending_on(check, tensors)


def check_request(module, what, strings, rows=None, unit="windows"):
    """The checks before tokenization: bytes, then the token lower bound (`rows`, default one
    row per example of strings[0]). Returns the strings, made to depend on both."""
    strings = check_bytes(strings, module.max_request_bytes, what)
    if rows is None:
        rows = tf.shape(strings[0], out_type=tf.int64)[0]
    return check_tokens(rows, module.seq_length, module.max_request_tokens, what, strings, unit)


def tokens_from_windows(max_windows, seq_length):
    """The token budget the deprecated --max_windows_per_request=N meant: N x seq_length."""
    return int(max_windows) * int(seq_length)
