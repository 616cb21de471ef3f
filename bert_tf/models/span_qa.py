"""BertSpanQA: extractive question answering (SQuAD) as start/end position prediction."""

from typing import Any

import keras

from bert_tf.layers.dense_head import SpanHead
from bert_tf.models.encoder import BertEncoder, encoder_inputs
from bert_tf.models.head_model import EncoderHeadModel


@keras.saving.register_keras_serializable(package="bert_tf")
class BertSpanQA(EncoderHeadModel):
    """Outputs: `start_logits`, `end_logits` [B, T] float32; padding positions get -1e4.
    Position 0 ([CLS]) stands for "no answer" (SQuAD v2.0)."""

    def __init__(self, encoder: BertEncoder, **kwargs: Any) -> None:
        head = SpanHead(encoder.config.initializer_range, dtype=encoder.dtype_policy, name="span")
        inputs = encoder_inputs()
        start, end = head(encoder(inputs)["sequence_output"], inputs["input_mask"])
        super().__init__(
            inputs=inputs, outputs={"start_logits": start, "end_logits": end}, **kwargs
        )
        self.encoder = encoder
        self.head = head
