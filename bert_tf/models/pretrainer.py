"""BertPretrainer: the encoder with the masked-LM and next-sentence heads.

Shape legend: B = batch, T = sequence length, P = max predictions per sequence, V = vocab.
"""

from typing import Any

import keras

from bert_tf.layers.dense_head import NextSentenceHead
from bert_tf.layers.masked_lm_head import MaskedLMHead
from bert_tf.models.encoder import (
    INPUT_NAMES,
    PACKING_INPUT_NAMES,
    BertEncoder,
    PackedInputError,
    encoder_inputs,
    is_packed,
)
from bert_tf.models.head_model import EncoderHeadModel
from bert_tf.tensor_types import Tensor, Tensors


@keras.saving.register_keras_serializable(package="bert_tf")
class BertPretrainer(EncoderHeadModel):
    """Inputs: the encoder inputs plus int32 `masked_lm_positions` [B, P].
    Outputs: `mlm_logits` [B, P, V] (only at the masked positions) and `nsp_logits` [B, 2].

    Packed rows (S sequences per row): with the encoder's packing inputs
    (`input_position_ids`, `input_sequence_ids`) and int32 `next_sentence_positions` [B, S]
    (each sequence's [CLS] position) also given, `masked_lm_positions` index the whole row
    and `nsp_logits` is [B, S, 2]: the pooler and NSP head on each sequence's [CLS].
    """

    def __init__(self, encoder: BertEncoder, **kwargs: Any) -> None:
        c = encoder.config
        mlm_head = MaskedLMHead(
            c.vocab_size,
            c.hidden_size,
            c.hidden_act,
            c.layer_norm_eps,
            c.initializer_range,
            embedding_layer=encoder.word_embeddings,
            dtype=encoder.dtype_policy,
            name="mlm",
        )
        nsp_head = NextSentenceHead(
            initializer_range=c.initializer_range, dtype=encoder.dtype_policy, name="nsp"
        )
        inputs = encoder_inputs(INPUT_NAMES + ("masked_lm_positions",))
        enc = encoder({name: inputs[name] for name in INPUT_NAMES})
        outputs = {
            "mlm_logits": mlm_head(enc["sequence_output"], inputs["masked_lm_positions"]),
            "nsp_logits": nsp_head(enc["pooled_output"]),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.mlm_head = mlm_head
        self.nsp_head = nsp_head

    def call(
        self, inputs: Tensors, training: bool | None = None, mask: Any = None
    ) -> dict[str, Tensor]:
        """One path for padded and packed rows: only the pooled vectors differ (position 0,
        or each sequence's [CLS] at `next_sentence_positions`)."""
        enc = self.encoder(
            {k: inputs[k] for k in INPUT_NAMES + PACKING_INPUT_NAMES if k in inputs},
            training=training,
        )
        sequence = enc["sequence_output"]  # [B, T, H]
        pooled = enc["pooled_output"]  # [B, H]
        if is_packed(inputs):
            if "next_sentence_positions" not in inputs:
                raise PackedInputError(
                    "packed pre-training inputs lack "
                    "'next_sentence_positions' (the [CLS] position of "
                    "each sequence)"
                )
            pooled = self.encoder.pool(sequence, inputs["next_sentence_positions"])  # [B, S, H]
        return {
            "mlm_logits": self.mlm_head(sequence, inputs["masked_lm_positions"]),
            "nsp_logits": self.nsp_head(pooled, training=training),
        }  # [B, (S,) 2]
