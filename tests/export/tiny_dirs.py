"""Tiny task model directories for the export tests (no fine-tune app needed)."""

import os

from bert_tf.model_dir import ModelDir

CLASS_LABELS = ["negative", "positive", "neutral"]
TAG_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# The serving exports the test modules share (task_exports).
EXPORT_TASKS = {
    "classify": {"type": "classify", "label_names": CLASS_LABELS},
    "pair": {"type": "classify", "label_names": CLASS_LABELS[:2], "text_b": "b"},
    "regression": {"type": "classify", "label_names": [], "num_classes": 1, "regression": True},
    "tag": {"type": "tag", "label_names": TAG_LABELS},
    "squad": {
        "type": "squad",
        "version_2_with_negative": True,
        "max_answer_length": 5,
        "doc_stride": 4,
    },
    "choice": {"type": "multiple_choice", "num_choices": 3},
}


def tiny_config():
    """The tiny encoder config of the export tests (vocab: tests/conftest.TINY_VOCAB)."""
    from bert_tf import BertConfig
    from tests.conftest import TINY_VOCAB

    return BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )


def make_task_dir(path, config, vocab_tokens, task, seq_length=16, seed=0):
    """Writes a model dir with a randomly initialized (seeded) tiny task model; returns it."""
    import keras

    from bert_tf import BertEncoder, BertPretrainer
    from bert_tf.tasks import get_task

    keras.utils.set_random_seed(seed)
    encoder = BertEncoder(config)
    kind = task["type"]
    if kind == "pretraining":
        model = BertPretrainer(encoder)
    else:
        model = get_task(kind).model_from_info(encoder, task)
    d = ModelDir(str(path))
    os.makedirs(d.path, exist_ok=True)
    with open(d.vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_tokens) + "\n")
    d.save_weights(model)
    d.write_config(
        config, {"vocab_file": "vocab.txt", "lower_case": True, "seq_length": seq_length}, task
    )
    return model


_SHARED = {}  # exports built once per test session (tracing an export costs seconds)


def task_exports(tmp_path_factory, seq_length=16):
    """{task name: (model_dir, Keras model, version dir)} for EXPORT_TASKS, built once."""
    if "tasks" not in _SHARED:
        from export.saved_model import export_serving
        from tests.conftest import TINY_VOCAB

        root = tmp_path_factory.mktemp("task_exports")
        out = {}
        for name, task in EXPORT_TASKS.items():
            model_dir = str(root / f"{name}_dir")
            model = make_task_dir(model_dir, tiny_config(), TINY_VOCAB, task, seq_length=seq_length)
            out[name] = (model_dir, model, export_serving(model_dir, str(root / "serving" / name)))
        _SHARED["tasks"] = out
    return _SHARED["tasks"]


def hub_exports(tmp_path_factory):
    """(pre-training model dir, BertPretrainer, preprocessor dir, encoder dir), built once."""
    if "hub" not in _SHARED:
        from export.hub import export_hub
        from tests.conftest import TINY_VOCAB

        root = tmp_path_factory.mktemp("hub_exports")
        model = make_task_dir(
            str(root / "pre_dir"), tiny_config(), TINY_VOCAB, {"type": "pretraining"}
        )
        pre_dir, enc_dir = export_hub(str(root / "pre_dir"), str(root / "out"))
        _SHARED["hub"] = (str(root / "pre_dir"), model, pre_dir, enc_dir)
    return _SHARED["hub"]
