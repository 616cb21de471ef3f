"""BertMultipleChoice: pick one of C choices (SWAG), as in the BERT paper.

Each example is C sequences `[CLS] context [SEP] choice_i [SEP]`; the encoder reads all B * C
of them at once, one learned vector scores each pooled output, and the C scores of an example
are its logits (softmax + cross-entropy over the choices).

Shape legend: B = batch, C = choices, T = sequence length, H = hidden size.
"""

from typing import Any

import keras
from keras import ops

from bert_tf.layers.initializers import bert_initializer
from bert_tf.models.encoder import INPUT_NAMES, BertEncoder
from bert_tf.models.head_model import EncoderHeadModel
from bert_tf.tensor_types import Tensor


@keras.saving.register_keras_serializable(package="bert_tf")
class FoldChoices(keras.layers.Layer):
    """int [B, C, T] -> [B * C, T]: every choice becomes one encoder row."""

    def call(self, x: Tensor) -> Tensor:
        return ops.reshape(x, (-1, ops.shape(x)[2]))  # [B * C, T]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (None, input_shape[2])


@keras.saving.register_keras_serializable(package="bert_tf")
class ChoiceHead(keras.layers.Layer):
    """pooled_output [B * C, H] -> logits [B, C] (float32): dropout, then one learned vector
    (+ bias) scores each choice; `num_choices_like` [B, C, T] gives C."""

    def __init__(
        self, dropout: float = 0.1, initializer_range: float = 0.02, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(
            1,
            kernel_initializer=bert_initializer(initializer_range),
            dtype=self.dtype_policy,
            name="dense",
        )

    def build(
        self,
        pooled_shape: tuple[int | None, ...],
        num_choices_like_shape: tuple[int | None, ...] | None = None,
    ) -> None:
        self.dense.build(pooled_shape)
        self.built = True

    def call(
        self, pooled: Tensor, num_choices_like: Tensor, training: bool | None = None
    ) -> Tensor:
        scores = self.dense(self.dropout(pooled, training=training))  # [B * C, 1]
        c = ops.shape(num_choices_like)[1]
        return ops.cast(ops.reshape(scores, (-1, c)), "float32")  # [B, C]

    def compute_output_shape(
        self,
        pooled_shape: tuple[int | None, ...],
        num_choices_like_shape: tuple[int | None, ...] | None = None,
    ) -> tuple[int | None, ...]:
        return (None, num_choices_like_shape[1] if num_choices_like_shape else None)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(dropout=self.dropout_rate, initializer_range=self.initializer_range)
        return config


@keras.saving.register_keras_serializable(package="bert_tf")
class BertMultipleChoice(EncoderHeadModel):
    """Inputs: int32 [B, C, T] `input_word_ids`, `input_mask`, `input_type_ids` (any C >= 1).
    Output: `logits` [B, C] float32 (softmax over C = the choice probabilities)."""

    config_keys = ("dropout",)

    def __init__(self, encoder: BertEncoder, dropout: float = 0.1, **kwargs: Any) -> None:
        fold = FoldChoices(name="fold_choices")
        head = ChoiceHead(
            dropout, encoder.config.initializer_range, dtype=encoder.dtype_policy, name="choice"
        )
        inputs = {
            name: keras.Input(shape=(None, None), dtype="int32", name=name) for name in INPUT_NAMES
        }  # [B, C, T]
        pooled = encoder({name: fold(x) for name, x in inputs.items()})["pooled_output"]
        outputs = {"logits": head(pooled, inputs["input_word_ids"])}  # [B, C]
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.head = head
        self.dropout = dropout
