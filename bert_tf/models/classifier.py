"""BertClassifier: sentence(-pair) classification or regression on the pooled [CLS] output."""

from typing import Any

import keras

from bert_tf.layers.dense_head import ClassificationHead
from bert_tf.models.encoder import BertEncoder, encoder_inputs
from bert_tf.models.head_model import EncoderHeadModel


@keras.saving.register_keras_serializable(package="bert_tf")
class BertClassifier(EncoderHeadModel):
    """Output: `logits` [B, C] float32 (C = 1 for regression)."""

    config_keys = ("num_classes", "dropout")

    def __init__(
        self, encoder: BertEncoder, num_classes: int, dropout: float = 0.1, **kwargs: Any
    ) -> None:
        head = ClassificationHead(
            num_classes,
            dropout,
            encoder.config.initializer_range,
            dtype=encoder.dtype_policy,
            name="classifier",
        )
        inputs = encoder_inputs()
        outputs = {"logits": head(encoder(inputs)["pooled_output"])}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.head = head
        self.num_classes = num_classes
        self.dropout = dropout
