"""Inputs far longer than seq_length (thousands of words) for tag and classify: the serving
graph (in-graph windows, one model batch per request), the fine-tuning evaluation path and
a brute-force window reference give the same answers; an entity at word 2,000 is found with
exact character offsets; the max-context rule (not "first window wins") picks the labels."""

import os
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY_VOCAB
from tests.export.test_saved_model import iob2_entities, special_ids, tiny_config
from tests.export.tiny_dirs import CLASS_LABELS, TAG_LABELS, make_task_dir
from tests.export.window_reference import StubTagger, piece_logits, stub_text, text_logits

SEQ = 16  # windows of 14 pieces, 7 apart (the default: half a window)
STRIDE = 7
LOTS = 10_000 * 16  # tokens per request: 10,000 windows of seq 16
WORDS = [w for w in TINY_VOCAB[5:] if not w.startswith("##")]  # one piece each


def long_texts(seed, sizes):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, n)) for n in sizes]


@pytest.fixture(scope="module")
def tag_module(tmp_path_factory):
    from export.saved_model import build_serving_module

    model_dir = str(tmp_path_factory.mktemp("long") / "tag")
    model = make_task_dir(
        model_dir,
        tiny_config(),
        TINY_VOCAB,
        {"type": "tag", "label_names": TAG_LABELS},
        seq_length=SEQ,
    )
    module, signatures = build_serving_module(model_dir, model=model, max_request_tokens=LOTS)
    return model_dir, model, signatures["serving_default"]


def served_entities(out, row):
    n = int(out["num_entities"][row])
    return [
        (
            out["entity_type"][row, e].decode(),
            int(out["entity_start"][row, e]),
            int(out["entity_end"][row, e]),
            out["entity_text"][row, e].decode(),
        )
        for e in range(n)
    ]


def test_tag_thousands_of_words_match_brute_force_and_evaluation(tag_module):
    from bert_tf.data import conll
    from bert_tf.text.tokenizer import BertTokenizer

    model_dir, model, serve = tag_module
    texts = long_texts(0, [2500, 3100, 5])
    start = time.time()
    out = {k: v.numpy() for k, v in serve(text=tf.constant(texts)).items()}
    seconds = time.time() - start
    tok = BertTokenizer(vocab_file=os.path.join(model_dir, "vocab.txt"), lower_case=True)
    ids = tok.tokenize(tf.constant(texts)).to_list()
    assert [len(x) for x in ids] == [2500, 3100, 5]  # one piece per word
    logits = piece_logits(model, ids, SEQ, STRIDE, *special_ids(model_dir))
    # the fine-tuning evaluation path: CoNLL windows, predictions stitched per word
    sentences = [conll.Sentence(t.split(), ["O"] * len(t.split()), source="x:1") for t in texts]
    features, windows = conll.build_features(sentences, tok, SEQ, {"O": 0})
    batch = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
    for r in range(len(features)):
        row = features.row(r).tolist() + [0] * (SEQ - len(features.row(r)))
        batch["input_word_ids"].append(row)
        batch["input_mask"].append([int(i < len(features.row(r))) for i in range(SEQ)])
        batch["input_type_ids"].append([0] * SEQ)
    eval_logits = np.asarray(
        model({k: np.array(v, np.int32) for k, v in batch.items()}, training=False)["logits"]
    )
    window_tags = [
        [TAG_LABELS[int(eval_logits[r, p].argmax())] for p in w.positions]
        for r, w in enumerate(windows)
    ]
    evaluated = conll.stitch_predictions(sentences, windows, window_tags)
    found = 0
    for row, text in enumerate(texts):
        labels = [TAG_LABELS[int(x.argmax())] for x in logits[row]]
        assert evaluated[row] == labels, row  # evaluation == brute force
        words = text.split()
        offsets = np.cumsum([0] + [len(w) + 1 for w in words])
        expected = [
            (kind, int(offsets[a]), int(offsets[b] + len(words[b])), " ".join(words[a : b + 1]))
            for kind, a, b in iob2_entities(labels)
        ]
        assert served_entities(out, row) == expected, row  # serving == brute force
        found += len(expected)
    n_windows = len(windows)
    print(
        f"tag long inputs: {sum(map(len, ids))} words in {n_windows} windows "
        f"(seq {SEQ}, stride {STRIDE}), {found} entities, serving call {seconds:.2f} s"
    )
    assert found > 100


def test_entity_at_word_2000_and_the_max_context_rule(tag_module):
    from export.saved_model import build_serving_module

    model_dir = tag_module[0]
    _, signatures = build_serving_module(
        model_dir, model=StubTagger(TINY_VOCAB), max_request_tokens=LOTS
    )
    text = stub_text()
    out = {
        k: v.numpy()
        for k, v in signatures["serving_default"](text=tf.constant([text, "france"])).items()
    }
    got = served_entities(out, 0)
    start = text.index("John")
    assert ("PER", start, start + len("John paris paris paris"), "John paris paris paris") in got
    # every "france" is centred in its max-context window, so it is labeled B-LOC; "the
    # first window holding it wins" would miss words 300 and 3001 (2 or fewer pieces on the
    # right there), "the last window wins" word 1500 (2 on the left)
    locs = [e for e in got if e[0] == "LOC"]
    assert len(locs) == 3 and all(e[3] == "france" for e in locs)
    assert [e[1] for e in locs] == [m for m in _all_indexes(text, "france")]
    assert len(got) == 4
    assert served_entities(out, 1) == []  # a 1-word text: no context, no entity


def _all_indexes(text, word):
    out, i = [], text.find(word)
    while i >= 0:
        out.append(i)
        i = text.find(word, i + 1)
    return out


def test_classify_long_texts_mean_of_windows(tmp_path):
    from bert_tf.data import classification
    from bert_tf.tasks.classify import ClassifyTask
    from bert_tf.text.tokenizer import BertTokenizer
    from export.saved_model import build_serving_module

    model_dir = str(tmp_path / "cls")
    model = make_task_dir(
        model_dir,
        tiny_config(),
        TINY_VOCAB,
        {"type": "classify", "label_names": CLASS_LABELS},
        seq_length=SEQ,
    )
    rng = np.random.default_rng(3)  # larger weights: logits that differ from window to window
    for v in model.weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
    _, signatures = build_serving_module(model_dir, model=model, max_request_tokens=LOTS)
    texts = long_texts(1, [3000, 40, 3, 0])
    start = time.time()
    out = signatures["serving_default"](text=tf.constant(texts))
    seconds = time.time() - start
    tok = BertTokenizer(vocab_file=os.path.join(model_dir, "vocab.txt"), lower_case=True)
    ids = tok.tokenize(tf.constant(texts)).to_list()
    logits = text_logits(model, ids, SEQ, STRIDE, *special_ids(model_dir))
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(out["probabilities"].numpy(), probs, atol=1e-5)
    # the fine-tuning evaluation path (windows -> model -> ClassifyTask.example_logits)
    examples = [classification.Example(t) for t in texts]
    features, example_of = classification.build_window_features(examples, tok, SEQ)
    rows = [features.row(r).tolist() for r in range(len(features))]
    word = np.array([r + [0] * (SEQ - len(r)) for r in rows], np.int32)
    window_logits = np.asarray(
        model(
            {
                "input_word_ids": word,
                "input_mask": (word > 0).astype(np.int32),
                "input_type_ids": 0 * word,
            },
            training=False,
        )["logits"]
    )
    task = ClassifyTask.__new__(ClassifyTask)
    task.eval_examples, task.eval_example_of = examples, example_of
    evaluated = task.example_logits([{"logits": x} for x in window_logits])
    np.testing.assert_allclose(evaluated, logits, atol=1e-5)
    # the long text is not its first window
    first = text_logits(model, [ids[0][: SEQ - 2]], SEQ, STRIDE, *special_ids(model_dir))
    assert np.abs(first[0] - logits[0]).max() > 0.01
    print(
        f"classify long inputs: {len(ids[0])} words -> {int((example_of == 0).sum())} "
        f"windows; serving call for {len(texts)} texts {seconds:.2f} s"
    )
