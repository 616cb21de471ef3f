"""BertEncoder: embeddings -> L post-LN transformer blocks -> tanh pooler on [CLS].

Shape legend: B = batch, T = sequence length, H = hidden size, L = layers.
Inputs and outputs use the TF Hub BERT names, so a model built on this encoder exports to the
signatures TF Hub users know.

Packed rows (several sequences per row, see bert_tf/data/pretraining/packing.py) are an
optional extension of the inputs: with `input_position_ids` and `input_sequence_ids` [B, T]
also given, positions come from `input_position_ids` and attention is block-diagonal over
`input_sequence_ids` (no token attends to another sequence or to padding). Without them the
functional graph runs unchanged.
"""

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.errors import BertTfError
from bert_tf.layers import kernels
from bert_tf.layers.attention import attention_bias, packed_attention_bias
from bert_tf.layers.embeddings import BertEmbeddings
from bert_tf.layers.initializers import bert_initializer
from bert_tf.layers.masked_lm_head import gather_positions
from bert_tf.layers.transformer import TransformerBlock
from bert_tf.models.row_packing import encode_packed
from bert_tf.tensor_types import DTypePolicy, Tensor, Tensors

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
PACKING_INPUT_NAMES = ("input_position_ids", "input_sequence_ids")
_PACKED_NAMES = INPUT_NAMES[::2] + PACKING_INPUT_NAMES  # packed rows need no input_mask


class PackedInputError(BertTfError, ValueError):
    """Packed-row inputs given incompletely; one line."""


def is_packed(inputs: Any) -> bool:
    """True if a dict of encoder inputs carries the packing extension."""
    return isinstance(inputs, dict) and any(k in inputs for k in PACKING_INPUT_NAMES)


def encoder_inputs(names: Sequence[str] = INPUT_NAMES) -> dict[str, Tensor]:
    """Symbolic int32 [B, T] inputs named as TF Hub's BERT."""
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in names}


@keras.saving.register_keras_serializable(package="bert_tf")
class BertEncoder(keras.Model):
    """The BERT encoder as a Keras functional model.

    Input: dict of int32 [B, T] `input_word_ids`, `input_mask` (1 = real token),
    `input_type_ids`. Output: dict with `sequence_output` [B, T, H], `pooled_output` [B, H]
    and `encoder_outputs` (list of L [B, T, H], the output of each block). Outputs are in the
    layers' compute dtype (bfloat16/float16 under mixed precision).
    """

    def __init__(
        self, config: BertConfig | dict[str, Any], dtype: DTypePolicy = None, **kwargs: Any
    ) -> None:
        if isinstance(config, dict):
            config = BertConfig.from_dict(config)
        c = config
        embeddings = BertEmbeddings(
            c.vocab_size,
            c.hidden_size,
            c.max_position_embeddings,
            c.type_vocab_size,
            c.hidden_dropout,
            c.layer_norm_eps,
            c.initializer_range,
            dtype=dtype,
            name="embeddings",
        )
        fused = kernels.wanted(c.fused_kernels, c.hidden_size)  # chosen once, here
        blocks = [
            TransformerBlock(
                c.hidden_size,
                c.num_heads,
                c.intermediate_size,
                c.hidden_act,
                c.hidden_dropout,
                c.attention_dropout,
                c.layer_norm_eps,
                c.initializer_range,
                fused_kernels=fused,
                dtype=dtype,
                name=f"transformer_{i}",
            )
            for i in range(c.num_layers)
        ]
        pooler = keras.layers.Dense(
            c.hidden_size,
            activation="tanh",
            kernel_initializer=bert_initializer(c.initializer_range),
            dtype=dtype,
            name="pooler",
        )

        inputs = encoder_inputs()
        outputs = _encode(embeddings, blocks, pooler, _padded_rows(inputs))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        if dtype is not None:
            # keras.Model's functional constructor drops `dtype`; without this, get_config
            # (and so .keras files) and heads built with `encoder.dtype_policy` lose the policy.
            self.dtype_policy = dtype

        self.config = config
        self.embeddings = embeddings
        self.blocks = blocks
        self.pooler = pooler

    # Training only, > 0: pack the padded rows into fewer full rows at least this wide
    # (bert_tf/models/row_packing.py; the same outputs at real tokens, no work on padding).
    # A compute choice of the run, not of the model: not in get_config. The fine-tuning
    # recipe sets it to its max_seq_length; it needs dynamic shapes (not under XLA/TPU).
    train_packing: int = 0

    def call(
        self, inputs: Tensors, training: bool | None = None, mask: Any = None
    ) -> dict[str, Any]:
        """The one forward pass (`_encode`) on padded rows or, with the packing inputs,
        packed rows; `pooled_output` is the pooler on position 0 (the first sequence's [CLS]
        for packed rows: use `pool` for every sequence's). With `train_packing`, training
        runs padded rows packed (`encode_packed`) and returns them padded."""
        if is_packed(inputs):
            return _encode(
                self.embeddings, self.blocks, self.pooler, _packed_rows(inputs), training
            )
        if training is True and self.train_packing > 0:
            return _outputs(
                self.pooler,
                encode_packed(
                    lambda packed: {
                        "encoder_outputs": _layers(
                            self.embeddings, self.blocks, _packed_rows(packed), training
                        )
                    },
                    {k: inputs[k] for k in INPUT_NAMES},
                    self.train_packing,
                ),
            )
        return _encode(self.embeddings, self.blocks, self.pooler, _padded_rows(inputs), training)

    def pool(self, sequence_output: Tensor, positions: Tensor) -> Tensor:
        """The pooler (tanh dense) on the tokens at `positions` int [B, S] of
        `sequence_output` [B, T, H] -> [B, S, H]: one pooled vector per packed sequence."""
        return self.pooler(gather_positions(sequence_output, positions))  # [B, S, H]

    @property
    def word_embeddings(self) -> keras.layers.Embedding:
        """The `keras.layers.Embedding` whose matrix the MLM decoder is tied to."""
        return self.embeddings.word_embeddings

    def get_config(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "BertEncoder":
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)


_Rows = tuple[Tensor, Tensor, Tensor | None, Tensor]  # word, type, position ids; bias


def _padded_rows(inputs: Tensors) -> _Rows:
    """One sequence per row: positions 0..T-1, attention to the real tokens of the row."""
    ids = {k: ops.cast(inputs[k], "int32") for k in INPUT_NAMES}
    return (
        ids["input_word_ids"],
        ids["input_type_ids"],
        None,
        attention_bias(ids["input_mask"], "float32"),
    )  # [B, 1, 1, T]


def _packed_rows(inputs: Tensors) -> _Rows:
    """Several sequences per row: positions from `input_position_ids`, attention
    block-diagonal over `input_sequence_ids`."""
    missing = [k for k in _PACKED_NAMES if k not in inputs]
    if missing:
        raise PackedInputError(
            f"packed encoder inputs lack '{missing[0]}' (packed rows "
            f"need {', '.join(_PACKED_NAMES)})"
        )
    ids = {k: ops.cast(inputs[k], "int32") for k in _PACKED_NAMES}
    return (
        ids["input_word_ids"],
        ids["input_type_ids"],
        ids["input_position_ids"],
        packed_attention_bias(ids["input_sequence_ids"], "float32"),
    )  # [B, 1, T, T]


def _encode(
    embeddings: BertEmbeddings,
    blocks: Sequence[TransformerBlock],
    pooler: keras.layers.Dense,
    rows: _Rows,
    training: bool | None = None,
) -> dict[str, Any]:
    """The forward pass: embeddings -> blocks -> pooler on position 0. `rows`: word ids,
    type ids, position ids (None = 0..T-1) and the additive attention bias."""
    return _outputs(pooler, _layers(embeddings, blocks, rows, training))


def _layers(
    embeddings: BertEmbeddings,
    blocks: Sequence[TransformerBlock],
    rows: _Rows,
    training: bool | None = None,
) -> list[Tensor]:
    """Embeddings -> blocks: the output of each block, L x [B, T, H]."""
    word_ids, type_ids, position_ids, bias = rows
    x = embeddings(word_ids, type_ids, position_ids=position_ids, training=training)  # [B, T, H]
    layer_outputs = []
    for block in blocks:
        x = block(x, bias, training=training)  # [B, T, H]
        layer_outputs.append(x)
    return layer_outputs


def _outputs(pooler: keras.layers.Dense, layer_outputs: list[Tensor]) -> dict[str, Any]:
    """The encoder's outputs from its blocks' outputs: the pooler on position 0."""
    x = layer_outputs[-1]  # [B, T, H]
    return {
        "sequence_output": x,
        "pooled_output": pooler(x[:, 0, :]),  # [B, H]
        "encoder_outputs": layer_outputs,
    }
