"""BertTagger: per-token classification (NER) on the sequence output."""

from typing import Any

import keras

from bert_tf.layers.dense_head import TokenClassificationHead
from bert_tf.models.encoder import BertEncoder, encoder_inputs
from bert_tf.models.head_model import EncoderHeadModel


@keras.saving.register_keras_serializable(package="bert_tf")
class BertTagger(EncoderHeadModel):
    """Output: `logits` [B, T, C] float32, one distribution per word piece."""

    config_keys = ("num_labels", "dropout")

    def __init__(
        self, encoder: BertEncoder, num_labels: int, dropout: float = 0.1, **kwargs: Any
    ) -> None:
        head = TokenClassificationHead(
            num_labels,
            dropout,
            encoder.config.initializer_range,
            dtype=encoder.dtype_policy,
            name="tagger",
        )
        inputs = encoder_inputs()
        outputs = {"logits": head(encoder(inputs)["sequence_output"])}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.head = head
        self.num_labels = num_labels
        self.dropout = dropout
