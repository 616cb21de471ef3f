"""What a task's export functions are given: the contexts of `Task.serving_signature(ctx)`
and `Task.tflite_graph(ctx)` (bert_tf/tasks/base.py).

A task builds its exported graphs from these public pieces only (tokenize, pack, run the model,
split long inputs into windows, check the request budget), so `bert_tf` never imports `export`:
export/serving/module.py's `ServingModule` is a ServingContext (it adds the request budget and
the SavedModel), export/tflite/converter.py builds a TFLiteContext.

Shape legend: B = batch, P = pieces of one segment, T = packed length, R = windows.
"""

import tensorflow as tf

from bert_tf.serving_graph import text as text_lib
from bert_tf.serving_graph import tflite_windows
from bert_tf.serving_graph import windows as windows_lib
from bert_tf.text.packer import pack_inputs, pack_row


def string_spec(name, rank=1):
    """A string input of a signature: [None] (rank 1) or [None, None] (rank 2). TFLite graphs
    take [None] too: with a static [1] the converter folds away the tokenizer's reshape to
    [1], which is what refuses a batch of two at run time."""
    return tf.TensorSpec([None] * rank, tf.string, name=name)


class ServingContext:
    """The SavedModel side (batched, any TF op; see docs/serving.md for the signatures).

    Attributes the implementation sets: `model` (the Keras task model), `task` (config.json's
    "task" dict), `seq_length` (int), `label_names` (list of str), `pad_to_longest` (bool),
    `tokenizer` (text.make_tokenizer), `cls_id`, `sep_id` (int), `is_continuation` (bool
    tensor [vocab]: the "##" pieces). The implementation defines `check_request` and
    `limit_windows` (the request budget); the rest is here."""

    def check_request(self, what, *strings, rows=None, unit="windows"):
        """The request's string tensors, made to depend on its budget checks (bytes, then at
        least `rows` model rows, default one per example of strings[0]) before tokenization:
        INVALID_ARGUMENT naming `what` and the rows' `unit` ("windows", "choices") when over."""
        raise NotImplementedError

    def limit_windows(self, n_w, what, unit="windows"):
        """n_w int64 [B] (model rows per example) -> n_w, made to depend on: all rows x
        seq_length fit the request's token budget (INVALID_ARGUMENT naming `what`, `unit`)."""
        raise NotImplementedError

    def run_model(self, inputs):
        """dict of int32 [B, T] (or [B, C, T]) -> the task model's outputs (inference)."""
        return self.model(inputs, training=False)

    def tokenize(self, text):
        """string [B] -> (cleaned text [B] (invalid UTF-8 -> U+FFFD), ids, byte starts, byte
        ends: int64 ragged [B, (P)], offsets into the cleaned text)."""
        clean = text_lib.clean_utf8(text)
        ids, starts, ends = self.tokenizer.tokenize_with_offsets(clean)
        return clean, ids, starts, ends

    def pack(self, segments, trimmer="longest_first"):
        """1 or 2 ragged id segments [B, (P)] -> the encoder inputs int32 [B, T] (the one
        packer, bert_tf.text.packer.pack_inputs; T = the batch's longest with
        pad_to_longest, else seq_length)."""
        return pack_inputs(
            segments,
            self.seq_length,
            self.cls_id,
            self.sep_id,
            0,
            self.pad_to_longest,
            trimmer=trimmer,
        )

    @property
    def window_stride(self):
        """Window stride of a single-text task: task.doc_stride, else half a window."""
        return windows_lib.single_text_stride(self.task, self.seq_length)

    def split_windows(self, ids, window, stride, what):
        """ragged [B, (P)] -> windows.Windows within the request budget (limit_windows)."""
        return windows_lib.split_windows(
            ids, window, stride, lambda n_w: self.limit_windows(n_w, what)
        )


class TFLiteContext:
    """The TFLite side: batch 1 (inputs string [1]), in the ops LiteRT runs (builtins +
    tf.text's TFLite kernels; no ragged tensors).

    `model` (Keras task model), `task` (config.json "task"), `seq_length` (int), `label_names`
    (list of str), `tokenizer` (tflite_text.TFLiteTokenizer: ids(text), with_offsets(text,
    what), cls_id, sep_id, is_continuation)."""

    def __init__(self, model, task, seq_length, tokenizer):
        self.model, self.task = model, dict(task)
        self.seq_length = int(seq_length)
        self.tokenizer = tokenizer
        self.label_names = [str(x) for x in self.task.get("label_names") or []]

    def run_model(self, inputs):
        """dict of int32 [R, T] (or [1, C, T]) -> the model's outputs."""
        return self.model(inputs, training=False)

    def run_row(self, ids, types):
        """ids, types int32 [T] (one unpadded row) -> the model's outputs for a batch of one."""
        ids = ids[None, :]  # [1, T]
        return self.run_model(
            {
                "input_word_ids": ids,
                "input_mask": tf.ones_like(ids),
                "input_type_ids": types[None, :],
            }
        )

    def pack_row(self, segments, trimmer="longest_first"):
        """ids int32 [P_i] of 1 or 2 segments -> (ids, types) int32 [T]: the one packer's
        dense form (bert_tf.text.packer.pack_row), the same truncation as pack_inputs."""
        return pack_row(
            segments, self.seq_length, self.tokenizer.cls_id, self.tokenizer.sep_id, trimmer
        )

    def pack_windows(self, prefix, pieces, window, stride, second_type=0):
        """prefix int32 [Q] + windows over pieces int32 [N] -> (inputs int32 [R, T],
        tflite_windows.Windows) (tflite_windows.pack_windows)."""
        return tflite_windows.pack_windows(
            prefix, pieces, window, stride, self.seq_length, self.tokenizer.sep_id, second_type
        )

    @property
    def window_stride(self):
        """Window stride of a single-text task: task.doc_stride, else half a window."""
        return windows_lib.single_text_stride(self.task, self.seq_length)
