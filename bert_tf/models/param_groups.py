"""How a BERT model's variables sit in depth, for layer-wise learning-rate decay: the model
side of `bert_tf.training.optimization` (which knows no layer names).

    optimizer = create_optimizer("adamw", 2e-5, steps, layer_decay=0.9,
                                 layers_below_top=param_groups.layers_below_top)

Depth counts from the input: 0 for `embeddings/...`, i + 1 for `transformer_i/...`, L + 1 for
everything else (pooler, heads), L the number of `transformer_*` blocks among the variables.
A variable's learning rate is multiplied by layer_decay ** (L + 1 - depth).
"""

import re
from collections.abc import Iterable, Sequence

import keras

_TRANSFORMER = re.compile(r"(^|/)transformer_(\d+)/")
_EMBEDDINGS = re.compile(r"(^|/)embeddings/")


def layer_depth(path: str, num_layers: int) -> int:
    """0 for embeddings, i + 1 for transformer_i, num_layers + 1 for the rest."""
    match = _TRANSFORMER.search(path)
    if match:
        return int(match.group(2)) + 1
    if _EMBEDDINGS.search(path):
        return 0
    return num_layers + 1


def count_layers(paths: Iterable[str]) -> int:
    """The number of transformer_i blocks named in `paths` (max i + 1, 0 if none)."""
    ids = [int(m.group(2)) for m in map(_TRANSFORMER.search, paths) if m]
    return max(ids) + 1 if ids else 0


@keras.saving.register_keras_serializable(package="bert_tf")
def layers_below_top(paths: Sequence[str]) -> list[int]:
    """[int] for the variable paths of a BERT model (encoder, pre-trainer or task model):
    how many layers each sits below the top, L + 1 - depth (0 for the pooler and heads)."""
    num_layers = count_layers(paths)
    return [num_layers + 1 - layer_depth(p, num_layers) for p in paths]
