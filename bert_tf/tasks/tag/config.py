"""The settings of the tag task (`--task=tag`)."""

import dataclasses

from bert_tf.data.conll import TAG_SCHEMES
from bert_tf.settings import setting, with_default
from bert_tf.tasks.settings import LabelSettings, WindowSettings


@dataclasses.dataclass(kw_only=True)
class TagSettings(WindowSettings, LabelSettings):
    """CoNLL token tagging: the tag scheme of the files, the tag names."""

    label_names: list[str] | None = with_default(
        LabelSettings,
        "label_names",
        None,
        help="explicit tag names and order; default: those of --train_file (O first).",
    )
    tag_scheme: str = setting(
        "iob",
        "the tag scheme of the CoNLL files. iob: IOB1 or IOB2 (O, B-TYPE, I-TYPE), "
        "kept as written; bioes: BIOES/IOBES (also S-TYPE, E-TYPE), converted to IOB2 (same "
        "chunks) for training, metrics and predictions. A tag outside the scheme (bare PER, "
        "lower-case o/b-per, S-/E- under iob) fails naming file and line.",
        choices=TAG_SCHEMES,
    )
