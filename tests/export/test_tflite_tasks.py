"""TFLite graphs of tag, squad and multiple-choice models (tiny, random weights): the same
decoded answers as the SavedModel's serving_default (ServingModule, same model), under LiteRT."""

import os
import time

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB
from tests.export.tiny_dirs import EXPORT_TASKS, TAG_LABELS, make_task_dir
from tests.export.window_reference import StubTagger, stub_text

SEQ = 16
TEXTS = [
    "john lives in paris , france",
    "the quick brown fox jumps over the lazy dog",
    "Café résumé! hello world",
    "",
    "  ",
    "un affable john in london",
    "who is the capital of france ? " * 3,
    "ﬁ™ Ｆｕｌｌ… ΑΣ.Β",
]
WORDS = [w for w in TINY_VOCAB[5:] if not w.startswith("##")]  # one piece each
# both graphs read texts longer than SEQ - 2 pieces in windows (7 apart): two of thousands of
# words (random words, seeded)
TAG_TEXTS = TEXTS + [" ".join(np.random.default_rng(n).choice(WORDS, n)) for n in (2500, 40)]
QA = [
    ("where does john live ?", "john lives in paris , france and london"),
    ("what ?", ""),
    ("", "the quick brown fox"),
    ("who " * 30, "hello world"),
    ("what is good ?", "a good movie is great , a bad movie is terrible " * 3),
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


def serving_module(model_dir, model):
    from export.saved_model import read_model_dir
    from export.serving.module import ServingModule

    config, vocab_file = read_model_dir(model_dir)
    module = ServingModule(model, config["task"], vocab_file, True, SEQ)
    module.max_request_tokens = 10_000 * SEQ  # long texts: many windows in one request
    return module.signatures()["serving_default"]


TASKS = {
    "tag": {"type": "tag", "label_names": TAG_LABELS},
    "squad": {
        "type": "squad",
        "version_2_with_negative": False,
        "max_answer_length": 5,
        "doc_stride": 4,
    },
    "choice": EXPORT_TASKS["choice"],
}
# the random choice head scores all choices alike; scaled up, the answers differ clearly
HEAD_SCALE = {"choice": 3000.0}


class _Exports:
    """Exports each task once per module, on first use (a conversion takes ~30 s)."""

    def __init__(self, root):
        self.root, self.done = root, {}

    def __getitem__(self, name):
        if name not in self.done:
            from export.tflite import export_tflite

            model_dir = str(self.root / name)
            model = make_task_dir(model_dir, tiny_config(), TINY_VOCAB, TASKS[name], seq_length=SEQ)
            if name in HEAD_SCALE:
                kernel = model.head.dense.kernel
                kernel.assign(kernel * HEAD_SCALE[name])
            path = str(self.root / f"{name}.tflite")
            export_tflite(model_dir, path, model=model)
            self.done[name] = (model_dir, model, path)
        return self.done[name]


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    return _Exports(tmp_path_factory.mktemp("tflite_tasks"))


def test_tag_entities_match_saved_model_graph(task_files):
    import tensorflow as tf

    from export.tflite import TFLiteModel

    model_dir, model, path = task_files["tag"]
    ref = serving_module(model_dir, model)(tf.constant(TAG_TEXTS))
    got = TFLiteModel(path)(text=TAG_TEXTS)  # a list: answered row by row
    total = 0
    for i, (text, g) in enumerate(zip(TAG_TEXTS, got)):
        n = int(ref["num_entities"][i])
        total += n
        assert int(g["num_entities"][0]) == n, text
        if n == 0:  # one padding row (LiteRT has no empty string tensors)
            assert g["entity_text"].tolist() == [b""] and g["entity_start"].tolist() == [-1]
            continue
        assert [t.decode() for t in g["entity_text"]] == [
            t.decode() for t in ref["entity_text"][i, :n].numpy()
        ]
        assert g["entity_type"].tolist() == ref["entity_type"][i, :n].numpy().tolist()
        assert g["entity_start"].tolist() == ref["entity_start"][i, :n].numpy().tolist()
        assert g["entity_end"].tolist() == ref["entity_end"][i, :n].numpy().tolist()
        np.testing.assert_allclose(g["entity_score"], ref["entity_score"][i, :n], atol=1e-4)
        for s, e, t in zip(g["entity_start"], g["entity_end"], g["entity_text"]):
            assert text[s:e] == t.decode()  # character offsets
    assert total >= 5, "the random tagger should find some entities"
    long_row = TAG_TEXTS.index(TAG_TEXTS[-2])
    assert int(ref["num_entities"][long_row]) > 50, "entities all along the 2,500 words"
    last = int(ref["num_entities"][long_row]) - 1
    assert int(ref["entity_start"][long_row, last]) > len(TAG_TEXTS[-2]) * 0.9


def litert_interpreter(path):
    """LiteRT's own interpreter with tf.text's kernels, no project code: what a phone app runs."""
    from ai_edge_litert.interpreter import InterpreterWithCustomOps
    from tensorflow_text.core.pybinds import tflite_registrar

    with open(path, "rb") as f:
        return InterpreterWithCustomOps(
            model_content=f.read(), custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS
        )


def litert_signature(path):
    return litert_interpreter(path).get_signature_list()["serving_default"]


def test_litert_signature_runner_answers_by_the_saved_model_names(task_files):
    """LiteRT's get_signature_runner() returns a dict keyed by the SavedModel's output names
    (not output_0 ... output_5), each value the SavedModel's for the same text."""
    import tensorflow as tf

    model_dir, model, path = task_files["tag"]
    texts = TAG_TEXTS[:-2]
    ref = serving_module(model_dir, model)(tf.constant(texts))
    i = int(np.argmax(ref["num_entities"]))
    n = int(ref["num_entities"][i])
    assert n >= 2, "the random tagger should find entities in one of the texts"
    out = litert_interpreter(path).get_signature_runner()(text=np.array([texts[i].encode()]))
    assert (
        sorted(out)
        == sorted(ref)
        == [
            "entity_end",
            "entity_score",
            "entity_start",
            "entity_text",
            "entity_type",
            "num_entities",
        ]
    )
    for name in ("entity_text", "entity_type", "entity_start", "entity_end"):
        assert out[name].tolist() == ref[name][i, :n].numpy().tolist(), name
    np.testing.assert_allclose(out["entity_score"], ref["entity_score"][i, :n], atol=1e-4)
    assert out["num_entities"].tolist() == [n]


def test_entity_at_word_2000_found_by_litert_with_exact_offsets():
    """A stub tagger whose labels depend on the context a word has in its window: under
    LiteRT the TFLite graph finds the entity at word 2,000 that crosses a window border, with
    exact character offsets, and labels each word from its max-context window (as the
    SavedModel, tests/export/test_long_inputs.py)."""
    from export.tflite import TFLiteModel, build_tflite_module, convert

    module = build_tflite_module(
        StubTagger(TINY_VOCAB),
        list(TINY_VOCAB),
        True,
        SEQ,
        {"type": "tag", "label_names": TAG_LABELS},
    )
    run = TFLiteModel(convert(module))
    text = stub_text()
    run(text="john lives in paris")
    start_time = time.perf_counter()
    got = run(text=text)
    seconds = time.perf_counter() - start_time
    entities = [
        (t.decode(), int(s), int(e), x.decode())
        for t, s, e, x in zip(
            got["entity_type"], got["entity_start"], got["entity_end"], got["entity_text"]
        )
    ]
    start = text.index("John")
    france = [i for i in range(len(text)) if text.startswith("france", i)]
    assert entities == sorted(
        [("PER", start, start + 22, "John paris paris paris")]
        + [("LOC", i, i + 6, "france") for i in france],
        key=lambda e: e[1],
    )
    assert int(got["num_entities"][0]) == 4 and len(france) == 3
    for _, s, e, x in entities:
        assert text[s:e] == x
    assert int(run(text="france")["num_entities"][0]) == 0  # no context: no entity
    print(
        f"TFLite tag, stub model: {len(text.split())} words in "
        f"{1 + (len(text.split()) - SEQ + 2 + 6) // 7} windows of {SEQ}: {seconds:.2f} s"
    )


@pytest.mark.slow
def test_squad_answers_match_saved_model_graph(task_files):
    import tensorflow as tf

    from export.tflite import TFLiteModel

    model_dir, model, path = task_files["squad"]
    qs, cs = [q for q, _ in QA], [c for _, c in QA]
    ref = serving_module(model_dir, model)(tf.constant(qs), tf.constant(cs))
    run = TFLiteModel(path)
    assert sorted(litert_signature(path)["outputs"]) == sorted(ref)  # named as the SavedModel
    for i, (q, c) in enumerate(QA):
        g = run(question=q, context=c)
        assert g["answer"][0].decode() == ref["answer"][i].numpy().decode(), (q, c)
        assert int(g["answer_start"][0]) == int(ref["answer_start"][i])
        assert int(g["answer_end"][0]) == int(ref["answer_end"][i])
        np.testing.assert_allclose(g["score"][0], ref["score"][i], atol=1e-4)
        s, e = int(g["answer_start"][0]), int(g["answer_end"][0])
        if s >= 0:
            assert c[s:e] == g["answer"][0].decode()
    long_ctx = QA[-1][1]
    assert int(ref["answer_start"][len(QA) - 1]) >= 0 and len(long_ctx.split()) > SEQ


CHOICES = [
    ("john lives in paris", ["in france", "in london", "the dog is lazy"]),
    ("what is a good movie ?", ["great", "terrible", ""]),
    ("", ["hello world", "the quick brown fox", "who ?"]),
    # longer than SEQ: the context loses pieces (longest first), then the long choice too
    (
        "the quick brown fox jumps over the lazy dog " * 3,
        ["a bad movie", "un affable john in london , france " * 2, "cafe resume"],
    ),
    ("Café résumé! " * 4, ["ﬁ™ Ｆｕｌｌ… ΑΣ.Β", "capital of france", "lives"]),
]


def test_multiple_choice_matches_saved_model_graph(task_files):
    import tensorflow as tf

    from export.tflite import TFLiteMultipleChoice

    model_dir, model, path = task_files["choice"]
    ref = serving_module(model_dir, model)(
        tf.constant([c for c, _ in CHOICES]), tf.constant([ch for _, ch in CHOICES])
    )
    got = TFLiteMultipleChoice(path)([c for c, _ in CHOICES], [ch for _, ch in CHOICES])
    assert sorted(ref) == ["choice", "probabilities"]
    assert sorted(litert_signature(path)["outputs"]) == sorted(ref)  # named as the SavedModel
    for i, (probs, choice) in enumerate(got):
        assert probs.shape == (3,)
        np.testing.assert_allclose(probs, ref["probabilities"][i], atol=1e-4)
        assert choice == int(ref["choice"][i]), CHOICES[i]
        top2 = np.sort(ref["probabilities"][i].numpy())[-2:]
        assert top2[1] - top2[0] > 1e-3, (
            "the answer must not hinge on a near tie",
            ref["probabilities"][i].numpy(),
        )
    assert len({c for _, c in got}) > 1, "the scaled head should pick different choices"
    assert len(CHOICES[3][0].split()) > SEQ and len(CHOICES[3][1][1].split()) > SEQ // 2


def test_multiple_choice_needs_the_models_number_of_choices(task_files):
    from export.tflite import TFLiteBatchError, TFLiteInputError, TFLiteMultipleChoice

    run = TFLiteMultipleChoice(task_files["choice"][2])
    with pytest.raises(TFLiteBatchError, match="2 contexts but 1 choice lists"):
        run(["a", "b"], [["c", "d", "e"]])
    assert run.num_choices == 3
    # another count: one clear line before the interpreter runs, every time (the graph
    # itself fails in RESHAPE, and a reused interpreter then repeated the first count)
    for wrong in (["in france", "in london"], ["a", "b", "c", "d"], ["a", "b"], "a"):
        with pytest.raises(TFLiteInputError) as e:
            run("john lives in paris", wrong)
        n = 1 if isinstance(wrong, str) else len(wrong)
        assert str(e.value) == (
            "choices: expected 3 choices (the number this model was "
            f"converted with, its model dir's num_choices), got {n}"
        )
    choices = ["in france", "in london", "the dog is lazy"]
    probs, _ = run("john lives in paris", choices)
    assert abs(float(probs.sum()) - 1.0) < 1e-5
    as_row = run.runner(
        context=np.array([b"john lives in paris"]),  # choices [1, C]
        choices=np.array([[c.encode() for c in choices]]),
    )
    np.testing.assert_allclose(as_row["probabilities"], probs, atol=1e-6)


def test_multiple_choice_graph_needs_num_choices():
    from bert_tf.serving_graph.context import TFLiteContext
    from bert_tf.tasks import get_task

    ctx = TFLiteContext(None, {"type": "multiple_choice"}, SEQ, None)
    with pytest.raises(ValueError, match="num_choices None: expected an integer >= 1"):
        get_task("multiple_choice").tflite_graph(ctx)


def test_batch_of_two_is_refused_by_the_graph_and_answered_by_the_runner(task_files):
    from export.tflite import TFLiteBatchError, TFLiteModel

    run = TFLiteModel(task_files["tag"][2])
    with pytest.raises(RuntimeError, match="(?i)reshape"):
        run.runner(text=np.array([b"john lives in paris", b"hello world"]))
    rows = run(text=["john lives in paris", "hello world"])
    assert [r["num_entities"][0] for r in rows] == [
        run(text=t)["num_entities"][0] for t in ["john lives in paris", "hello world"]
    ]
    with pytest.raises(TFLiteBatchError, match="same length"):
        TFLiteModel(task_files["tag"][2])(text=["a", "b"], other=["c"])


def test_fast_tokenizer_is_classify_only(task_files):
    from export.tflite import TFLiteExportError, export_tflite

    model_dir, model, path = task_files["tag"]
    with pytest.raises(TFLiteExportError, match="character offsets"):
        export_tflite(model_dir, path + ".fast", model=model, tokenizer="fast")
    assert not os.path.exists(path + ".fast")


@pytest.mark.slow
@pytest.mark.real_weights
def test_real_weights_parity_with_saved_model_graph(tmp_path):
    """MiniLM encoder (real weights) with tag and squad heads, real SMS: float32 TFLite gives
    the same entities / answers as the SavedModel graph, scores within 1e-4."""
    from benchmarks import tflite_measure

    report = tflite_measure.main(
        [
            "--work_dir",
            str(tmp_path),
            "--texts",
            "25",
            "--tasks",
            "tag,squad",
            "--variants",
            "none",
            "--head_scale",
            "5",
        ]
    )
    for task in ("tag", "squad"):
        assert report[task]["none"]["same_answers"] == "25/25", report
        assert report[task]["none"]["max_abs_diff_same"] <= 1e-4, report
