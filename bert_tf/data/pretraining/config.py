"""Settings of pre-training data creation and its error class."""

import dataclasses

from bert_tf.data.pretraining import sentences as sentences_lib
from bert_tf.errors import BertTfError


class PretrainingDataError(BertTfError, ValueError):
    """Bad input for pre-training data creation; the message is one line."""


@dataclasses.dataclass(frozen=True)
class CreationConfig:
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20  # 0 = unmasked records (for dynamic masking)
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    dupe_factor: int = 10
    random_seed: int = 12345
    whole_word_masking: bool = False
    input_format: str = "auto"
    chunk_sentences: int = 10000
    max_document_sentences: int = 10000

    def validate(self):
        if self.max_seq_length < 5:
            raise PretrainingDataError(
                f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), got "
                f"{self.max_seq_length}"
            )
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise PretrainingDataError(
                f"masked_lm_prob must be in (0, 1), got {self.masked_lm_prob}"
            )
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise PretrainingDataError(
                f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}"
            )
        if self.dupe_factor < 1:
            raise PretrainingDataError(f"dupe_factor must be >= 1, got {self.dupe_factor}")
        if self.max_predictions_per_seq < 0:
            raise PretrainingDataError(
                f"max_predictions_per_seq must be >= 0, got {self.max_predictions_per_seq}"
            )
        if self.max_predictions_per_seq > self.max_seq_length:
            raise PretrainingDataError(
                f"--max_predictions_per_seq: expected an integer in [0, "
                f"{self.max_seq_length}] (a sequence of --max_seq_length="
                f"{self.max_seq_length} tokens has no more to mask), got "
                f"{self.max_predictions_per_seq}"
            )
        if self.max_predictions_per_seq:
            needed = int(round(self.max_seq_length * self.masked_lm_prob))
            if self.max_predictions_per_seq < needed:
                raise PretrainingDataError(
                    f"max_predictions_per_seq={self.max_predictions_per_seq} is too small for "
                    f"masked_lm_prob={self.masked_lm_prob} * max_seq_length="
                    f"{self.max_seq_length}: needs at least {needed} (or 0 for unmasked "
                    "records and dynamic masking)"
                )
        if self.input_format not in sentences_lib.FORMATS:
            raise PretrainingDataError(
                f"input_format must be one of {sentences_lib.FORMATS}, got {self.input_format!r}"
            )
