"""Tiny task model directories for the export tests (no fine-tune app needed)."""

import os

from bert_tf.model_dir import ModelDir

CLASS_LABELS = ["negative", "positive", "neutral"]
TAG_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def make_task_dir(path, config, vocab_tokens, task, seq_length=16, seed=0):
    """Writes a model dir with a randomly initialized (seeded) tiny task model; returns it."""
    import keras
    from bert_tf import BertClassifier, BertEncoder, BertPretrainer, BertSpanQA, BertTagger
    keras.utils.set_random_seed(seed)
    encoder = BertEncoder(config)
    kind = task["type"]
    if kind == "classify":
        model = BertClassifier(encoder, len(task["label_names"]) or task["num_classes"])
    elif kind == "tag":
        model = BertTagger(encoder, len(task["label_names"]))
    elif kind == "pretraining":
        model = BertPretrainer(encoder)
    else:
        model = BertSpanQA(encoder)
    d = ModelDir(str(path))
    os.makedirs(d.path, exist_ok=True)
    with open(d.vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab_tokens) + "\n")
    d.save_weights(model)
    d.write_config(config, {"vocab_file": "vocab.txt", "lower_case": True,
                            "seq_length": seq_length}, task)
    return model
