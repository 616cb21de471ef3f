"""The settings of the squad task (`--task=squad`)."""

import dataclasses

from bert_tf.settings import setting
from bert_tf.tasks.settings import TaskSettings

DEFAULT_DOC_STRIDE = 128  # the original run_squad.py default


@dataclasses.dataclass(kw_only=True)
class SquadSettings(TaskSettings):
    """Extractive question answering: context windows, question length, answer decoding."""

    doc_stride: int | None = setting(
        None,
        "pieces between the starts of consecutive windows of a context longer than "
        f"--max_seq_length. Default: {DEFAULT_DOC_STRIDE}.",
        bounds="[1, inf)",
    )
    max_query_length: int = setting(
        64, "questions are truncated to this many tokens.", bounds="[1, inf)"
    )
    max_answer_length: int = setting(30, "longest answer span in tokens.", bounds="[1, inf)")
    n_best_size: int = setting(
        20, "start/end candidates per window and n-best answers kept.", bounds="[1, inf)"
    )
    null_score_diff_threshold: float = setting(
        0.0,
        'SQuAD v2.0: answer "" when null score - best span score > this; '
        "eval_results.json reports the best threshold found on the eval set (best_f1_thresh).",
    )
    version_2_with_negative: bool | None = setting(
        None, "SQuAD v2.0 (unanswerable questions); default: detected from --train_file."
    )
    squad_offset_errors: str = setting(
        "warn",
        "answers whose answer_start does not match the context: warn (move to the "
        "nearest occurrence / skip, counted) or fail naming the question id.",
        choices=("warn", "fail"),
    )

    @property
    def context_stride(self):
        """Pieces between context windows (the default when --doc_stride is unset)."""
        return self.doc_stride or DEFAULT_DOC_STRIDE
