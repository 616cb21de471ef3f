"""Serving SavedModel export: versions, fresh-process parity with the Keras model, op list,
bad input for every signature.

All three tasks are exported once per module (tiny models, seq_length 16) and queried in ONE
fresh process per export that imports only tensorflow + tensorflow_text."""

import os

import numpy as np
import pytest

from bert_tf.text.vocab import load_vocab
from tests.conftest import TINY_VOCAB
from tests.export.tiny_dirs import CLASS_LABELS, TAG_LABELS, make_task_dir, task_exports
from tests.export.window_reference import piece_logits, text_logits

SEQ = 16
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world",
    "Café résumé!",
    "john lives in paris , france",
    "what is the capital of france ?",
]
BAD = [
    "",
    "   \t\n ",
    b"\xff\xfe invalid \xc3",
    "the quick brown fox " * 40,
    "\u00e9\u4e2d\u6587 cafe\u0301",
]


def tiny_config():
    from bert_tf import BertConfig

    return BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=2,
        hidden_size=32,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )


def as_bytes(s):
    return s if isinstance(s, bytes) else s.encode("utf-8")


def clean_str(s):
    """The serving graph's view of an input: UTF-8 with invalid bytes -> U+FFFD."""
    return as_bytes(s).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """classify, pair, tag, squad: (model_dir, Keras model, version dir), shared per session."""
    return task_exports(tmp_path_factory)


PAIR_A = ["hello world", "", "the quick brown fox " * 10]
PAIR_B = ["good movie", b"\xff", "a lazy dog " * 10]
QUESTIONS = ["where does john live ?", "", "what ?", "who " * 30, b"\xff?"]
CONTEXTS = [
    "john lives in paris , france",
    "hello world",
    "",
    "the quick brown fox",
    "the capital of france is paris " * 5,
]


@pytest.fixture(scope="module")
def fresh(exported):
    """All requests of this module, answered by ONE fresh tensorflow + tensorflow_text process."""
    from export.verify import run_fresh_many

    pair_dir = exported["pair"][0]
    ref = pack_reference(
        pair_dir, list(zip(tokenize(pair_dir, PAIR_A)[0], tokenize(pair_dir, PAIR_B)[0]))
    )
    jobs = {
        "classify": (
            exported["classify"][2],
            [
                {"inputs": {"text": TEXTS + BAD}},
                {"inputs": {"text": TEXTS[:1]}},
                {"inputs": {"text": []}},
                {"inputs": {"text": BAD}},
                {
                    "signature": "serving_encoded",
                    "inputs": {
                        "input_word_ids": np.zeros((0, 4), np.int32),
                        "input_mask": np.zeros((0, 4), np.int32),
                        "input_type_ids": np.zeros((0, 4), np.int32),
                    },
                },
            ],
        ),
        "pair": (
            exported["pair"][2],
            [
                {"inputs": {"text": PAIR_A, "text_b": PAIR_B}},
                {"signature": "serving_encoded", "inputs": {k: v.tolist() for k, v in ref.items()}},
            ]
            + warmup_as_requests(exported["pair"][2]),
        ),
        "tag": (exported["tag"][2], [{"inputs": {"text": TEXTS + BAD}}, {"inputs": {"text": []}}]),
        "squad": (
            exported["squad"][2],
            [
                {"inputs": {"question": QUESTIONS, "context": CONTEXTS}},
                {"inputs": {"question": [], "context": []}},
                {"inputs": {"question": ["a", "b"], "context": ["c"]}},
            ],
        ),
    }
    return run_fresh_many(jobs), ref


def warmup_as_requests(path):
    """The version's warm-up PredictionLogs as run_fresh requests (TF Serving replays them)."""
    import tensorflow as tf

    from export.serving.warmup import read_warmup_requests

    return [
        {
            "signature": r.model_spec.signature_name,
            "inputs": {k: list(tf.make_ndarray(v)) for k, v in r.inputs.items()},
        }
        for r in read_warmup_requests(path)
    ]


def pack_reference(model_dir, segments_list, waterfall=False, max_query=None):
    """Independent numpy packing of tokenized segments -> padded encoder inputs."""
    vocab = load_vocab(os.path.join(model_dir, "vocab.txt"))
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    rows, types = [], []
    for segments in segments_list:
        segs = [list(s) for s in segments]
        if max_query is not None:
            segs[0] = segs[0][:max_query]
        budget = SEQ - len(segs) - 1
        if waterfall:
            segs[1] = segs[1][: max(0, budget - len(segs[0]))]
        else:
            while sum(map(len, segs)) > budget:  # original BERT: pop from the longer
                longest = max(range(len(segs)), key=lambda i: (len(segs[i]), i))  # tie: b
                segs[longest].pop()
        ids, tt = [cls], [0]
        for k, s in enumerate(segs):
            ids += s + [sep]
            tt += [k] * (len(s) + 1)
        rows.append(ids)
        types.append(tt)
    width = max(2, max(len(r) for r in rows))
    arr = lambda xs: np.array([x + [0] * (width - len(x)) for x in xs], np.int32)  # noqa: E731
    return {
        "input_word_ids": arr(rows),
        "input_mask": arr([[1] * len(r) for r in rows]),
        "input_type_ids": arr(types),
    }


def special_ids(model_dir):
    vocab = load_vocab(os.path.join(model_dir, "vocab.txt"))
    return vocab.index("[CLS]"), vocab.index("[SEP]")


def tokenize(model_dir, texts):
    """In-process tokenization with the same tokenizer the export uses (eager)."""
    import tensorflow as tf

    from bert_tf.serving_graph import text as text_graph

    tok = text_graph.make_tokenizer(os.path.join(model_dir, "vocab.txt"), True)
    ids, starts, ends = tok.tokenize_with_offsets(
        text_graph.clean_utf8(tf.constant([as_bytes(t) for t in texts]))
    )
    return ids.to_list(), starts.to_list(), ends.to_list()


# ---- layout and versions -------------------------------------------------------------


def test_versions_are_numbered_and_never_clobbered(exported, tmp_path):
    from export.saved_model import export_serving

    model_dir, model, _ = exported["classify"]
    base = tmp_path / "m"
    os.makedirs(base / "7")
    (base / "7" / "keep.txt").write_text("old")
    (base / "junk").mkdir()
    path = export_serving(model_dir, str(base), warmup=False, model=model)
    assert path == str(base / "8")
    assert (base / "7" / "keep.txt").read_text() == "old"
    assert os.path.isfile(base / "8" / "saved_model.pb")
    assert not [n for n in os.listdir(base) if n.startswith(".export")]


def test_warmup_file_holds_prediction_logs(exported):
    from export.serving.warmup import read_warmup_requests

    requests = read_warmup_requests(exported["pair"][2])
    assert len(requests) == 2
    assert set(requests[1].inputs) == {"text", "text_b"}
    assert requests[1].inputs["text"].tensor_shape.dim[0].size == 2
    assert requests[0].model_spec.signature_name == "serving_default"


def test_bad_export_input_is_one_line(tmp_path):
    from export.saved_model import ExportError, read_model_dir

    with pytest.raises(ExportError, match="no such directory"):
        read_model_dir(str(tmp_path / "missing"))


# ---- fresh process: ops, parity, bad input ---------------------------------------------


def _check_ops(report):
    assert not report["unknown_ops"], report["unknown_ops"]
    assert not report["project_modules"]
    from export.verify import PY_FUNC_OPS

    assert not set(PY_FUNC_OPS) & set(report["core_ops"] + report["text_ops"])
    assert report["text_ops"], "expected tf.text ops in the graph"
    # TF Serving images embed tf.text 2.12 (tensorflow/serving#4057): none of the newer
    # "TFText>..." ops (e.g. TFText>RoundRobinTrim) may appear.
    assert not [op for op in report["text_ops"] if op.startswith("TFText>")], report["text_ops"]
    # TF Serving's load path (restore op + Session.run) answers as the Python loader does
    assert not report["session_loader"]["errors"], report["session_loader"]["errors"][:2]
    assert report["session_loader"]["max_abs_diff"] <= 1e-5


def test_classify_fresh_process_matches_keras(exported, fresh):
    model_dir, model, path = exported["classify"]
    texts = TEXTS + BAD
    report, outs = fresh[0]["classify"]
    _check_ops(report)
    assert {"serving_default", "serving_encoded"} <= set(report["signatures"])
    ids = tokenize(model_dir, texts)[0]
    assert max(map(len, ids)) > 3 * SEQ  # a long text: several windows
    probs = text_logits(model, ids, SEQ, (SEQ - 2) // 2, *special_ids(model_dir))
    probs = np.exp(probs - probs.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(outs[0]["probabilities"], probs, atol=1e-5)
    assert [b.decode() for b in outs[0]["label"]] == [CLASS_LABELS[i] for i in probs.argmax(-1)]
    # batch of one (padded to its own length) == the same row in a bigger batch
    np.testing.assert_allclose(outs[1]["probabilities"][0], probs[0], atol=1e-5)
    assert outs[2]["probabilities"].shape == (0, 3) and outs[2]["label"].shape == (0,)
    np.testing.assert_allclose(outs[3]["probabilities"], probs[len(TEXTS) :], atol=1e-5)
    assert outs[4]["probabilities"].shape == (0, 3)  # empty batch on serving_encoded


def test_pair_classifier_and_encoded_signature(exported, fresh):
    model_dir, model, path = exported["pair"]
    ref = fresh[1]
    report, outs = fresh[0]["pair"]
    _check_ops(report)
    logits = np.asarray(model(ref, training=False)["logits"])
    np.testing.assert_allclose(outs[1]["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(outs[0]["probabilities"], outs[1]["probabilities"], atol=1e-6)
    assert outs[0]["label"].shape == (3,)
    # the warm-up requests run cleanly (batch 1 and 2)
    assert [o["probabilities"].shape for o in outs[2:]] == [(1, 2), (2, 2)]


def iob2_entities(labels):
    """conlleval-style (type, first word, last word) from word labels."""
    ents, cur = [], None
    for i, lab in enumerate(labels + ["O"]):
        kind = lab[2:] if lab != "O" else None
        if cur and (lab == "O" or lab.startswith("B-") or kind != cur[0]):
            ents.append(tuple(cur))
            cur = None
        if lab != "O" and cur is None:
            cur = [kind, i, i]
        elif cur is not None:
            cur[2] = i
    return ents


def test_tag_entities_match_reference_decoding(exported, fresh):
    model_dir, model, path = exported["tag"]
    texts = TEXTS + BAD
    report, outs = fresh[0]["tag"]
    _check_ops(report)
    out = outs[0]
    ids, starts, ends = tokenize(model_dir, texts)
    vocab = open(os.path.join(model_dir, "vocab.txt")).read().split("\n")
    logits = piece_logits(model, ids, SEQ, (SEQ - 2) // 2, *special_ids(model_dir))
    for row, text in enumerate(texts):
        clean = clean_str(text)
        raw = as_bytes(clean)
        # words: a piece that is not "##..." starts a word
        words = []
        for k, tid in enumerate(ids[row]):
            if k == 0 or not vocab[tid].startswith("##"):
                words.append([k, k])
            else:
                words[-1][1] = k
        labels = [TAG_LABELS[int(logits[row][w[0]].argmax())] for w in words]
        expected = []
        for kind, w0, w1 in iob2_entities(labels):
            b0 = starts[row][words[w0][0]]
            b1 = max(ends[row][k] for k in range(words[w0][0], words[w1][1] + 1))
            c0, c1 = len(raw[:b0].decode()), len(raw[:b1].decode())
            expected.append((kind, c0, c1, clean[c0:c1]))
        n = int(out["num_entities"][row])
        got = [
            (
                out["entity_type"][row, e].decode(),
                int(out["entity_start"][row, e]),
                int(out["entity_end"][row, e]),
                out["entity_text"][row, e].decode(),
            )
            for e in range(n)
        ]
        assert got == expected, (text, got, expected)
        assert all(out["entity_start"][row, n:] == -1)
    assert outs[1]["entity_text"].shape[0] == 0 and outs[1]["num_entities"].shape == (0,)


def test_squad_answers_match_brute_force(exported, fresh):
    """The in-graph windowed decoding against a brute force in numpy: every context cut
    into doc_stride windows (the original rule), each window packed and run through the
    Keras model, every (start, end) pair with start at a max-context token tried."""
    from bert_tf.data.squad import max_context_windows, window_starts

    model_dir, model, path = exported["squad"]
    questions, contexts = QUESTIONS, CONTEXTS
    report, outs = fresh[0]["squad"]
    _check_ops(report)
    out = outs[0]
    q_ids = [q[: min(64, SEQ - 4)] for q in tokenize(model_dir, questions)[0]]
    c_ids, c_starts, c_ends = tokenize(model_dir, contexts)
    windows = []  # (row, window start, window length)
    for row in range(len(questions)):
        window = SEQ - len(q_ids[row]) - 3
        for start in window_starts(len(c_ids[row]), window, min(4, window)):
            windows.append((row, start, min(len(c_ids[row]) - start, window)))
    assert sum(1 for w in windows if w[0] == 4) > 3  # the long context: many windows
    ref = pack_reference(model_dir, [(q_ids[r], c_ids[r][st : st + n]) for r, st, n in windows])
    res = model(ref, training=False)
    s, e = np.asarray(res["start_logits"]), np.asarray(res["end_logits"])
    answered = []
    for row in range(len(questions)):
        mine = [(w, st, n) for w, (r, st, n) in enumerate(windows) if r == row]
        best_window = max_context_windows(
            len(c_ids[row]), [st for _, st, _ in mine], SEQ - len(q_ids[row]) - 3
        )
        first = len(q_ids[row]) + 2
        best, span, null = -np.inf, None, np.inf
        for k, (w, st, n) in enumerate(mine):
            null = min(null, s[w, 0] + e[w, 0])
            for i in range(first, first + n):
                if best_window[st + i - first] != k:
                    continue
                for j in range(i, min(i + 5, first + n)):
                    if s[w, i] + e[w, j] > best:
                        best, span = s[w, i] + e[w, j], (st + i - first, st + j - first)
        clean = clean_str(contexts[row])
        raw = as_bytes(clean)
        if span is None or null - best > 0:
            assert out["answer"][row] == b"" and out["answer_start"][row] == -1, row
        else:
            b0, b1 = c_starts[row][span[0]], c_ends[row][span[1]]
            c0, c1 = len(raw[:b0].decode()), len(raw[:b1].decode())
            assert (int(out["answer_start"][row]), int(out["answer_end"][row])) == (c0, c1)
            assert out["answer"][row].decode() == clean[c0:c1]
            assert 0.0 < out["score"][row] <= 1.0
            answered.append((row, span))
    assert answered  # spans were compared, not only nulls
    assert outs[1]["answer"].shape == (0,)
    # mismatched batch sizes: a clear error, not a crash of the process
    assert "__error__" in outs[2]


def test_regression_classifier_returns_score(tmp_path):
    """In-process (no save): task.regression -> serving_default returns the raw score."""
    import tensorflow as tf

    from export.saved_model import build_serving_module

    model_dir = str(tmp_path / "reg")
    model = make_task_dir(
        model_dir,
        tiny_config(),
        TINY_VOCAB,
        {"type": "classify", "label_names": [], "num_classes": 1, "regression": True},
        seq_length=SEQ,
    )
    module, signatures = build_serving_module(model_dir, model=model)
    out = signatures["serving_default"](text=tf.constant(["hello world", ""]))
    assert set(out) == {"score"}
    ids = tokenize(model_dir, ["hello world", ""])[0]
    ref = np.asarray(
        model(pack_reference(model_dir, [[x] for x in ids]), training=False)["logits"]
    )[:, 0]
    np.testing.assert_allclose(out["score"].numpy(), ref, atol=1e-5)


def test_squad_windows_use_the_max_context_rule(tmp_path):
    """A stub QA model scores "paris" by its packed position and "london" flat: "paris" near
    the end of window 0 (little context) outscores "london", but the rule lets it start a
    span only in window 1, where it scores less, so the answer is "london"."""
    import tensorflow as tf

    from export.saved_model import build_serving_module

    model_dir = str(tmp_path / "qa")
    make_task_dir(
        model_dir,
        tiny_config(),
        TINY_VOCAB,
        {"type": "squad", "version_2_with_negative": True, "max_answer_length": 5, "doc_stride": 4},
        seq_length=SEQ,
    )
    paris, london = TINY_VOCAB.index("paris"), TINY_VOCAB.index("london")

    class Stub(tf.Module):
        def __call__(self, inputs, training=False):
            ids = inputs["input_word_ids"]  # [R, T]
            pos = tf.cast(tf.range(tf.shape(ids)[1])[None, :], tf.float32)
            logits = tf.where(ids == paris, 5.0 + pos, 0.0) + tf.where(ids == london, 16.0, 0.0)
            return {"start_logits": logits, "end_logits": logits}

    _, signatures = build_serving_module(model_dir, model=Stub())
    context = (
        "the quick brown london fox jumps over lazy dog is paris good bad movie "
        "great world"
    )  # 16 pieces: windows 0-11 and 4-15
    out = signatures["serving_default"](
        question=tf.constant(["where"]), context=tf.constant([context])
    )
    start = context.index("london")
    assert out["answer"].numpy().tolist() == [b"london"]
    assert out["answer_start"].numpy().tolist() == [start]
    assert out["answer_end"].numpy().tolist() == [start + len("london")]
