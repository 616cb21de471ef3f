"""Reliability of serving exports: the per-request token budget (SQuAD, tag, classify), text
pairs over seq_length (longest-first truncation), serving_encoded id checks,
file modes of published versions and the clean-up of temp dirs left by killed exports.

The graph checks run on the serving functions of a tiny SQuAD model (seq_length 16, doc_stride
4, at most 3 windows of seq 16 = 48 tokens per request) without saving it (saving adds minutes
of tracing on a busy 2-core machine and does not change the graph logic;
tests/apps/test_predict.py and the export tests cover the saved graphs). One tiny classifier is
exported for real, under umask 027, into a model base path that already holds leftovers of
killed exports."""

import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import TINY_VOCAB
from tests.export.tiny_dirs import make_task_dir

SEQ = 16
MAX_WINDOWS = 3
MAX_TOKENS = MAX_WINDOWS * SEQ  # --max_request_tokens of the capped modules


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant_leftovers(base):
    """Temp dirs as killed / running exports and users leave them; -> {name: expected to
    survive}. Only a dir with bert-tf's owner mark of a dead process of this host goes."""
    from export.publish import _host

    host = _host()
    dead = _dead_pid()
    leftovers = {
        ".export-backup": True,  # a user's, 2 days old
        f".export-{host}-{dead}-nomark12": True,  # unmarked: never touched
        f".export-{host}-{dead}-abcd1234": False,  # marked, its process gone
        f".export-{host}-{os.getpid()}-live5678": True,
    }  # a running export's
    two_days_ago = time.time() - 2 * 24 * 3600
    for name in leftovers:
        os.makedirs(os.path.join(base, name, "variables"))
        with open(os.path.join(base, name, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        os.utime(os.path.join(base, name), (two_days_ago, two_days_ago))
    for name, pid in (
        (f".export-{host}-{dead}-abcd1234", dead),
        (f".export-{host}-{os.getpid()}-live5678", os.getpid()),
    ):
        _mark(os.path.join(base, name), pid)
    return leftovers


def _mark(path, pid, host=None):
    from bert_tf import ownership

    ownership.write_owner_mark(path)
    mark = ownership.read_owner_mark(path)
    mark.update(pid=pid, process_start=None, host=host or mark["host"])
    with open(os.path.join(path, ownership.OWNER_MARK), "w") as f:
        json.dump(mark, f)


def _config():
    from bert_tf import BertConfig

    return BertConfig.preset(
        "tiny",
        vocab_size=len(TINY_VOCAB),
        num_layers=1,
        hidden_size=16,
        num_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )


@pytest.fixture(scope="module")
def squad(tmp_path_factory):
    from export.saved_model import build_serving_module

    model_dir = str(tmp_path_factory.mktemp("limits") / "qa_dir")
    model = make_task_dir(
        model_dir,
        _config(),
        TINY_VOCAB,
        {"type": "squad", "doc_stride": 4, "max_answer_length": 5},
        seq_length=SEQ,
    )
    module, signatures = build_serving_module(model_dir, model=model, max_request_tokens=MAX_TOKENS)
    return {"module": module, "signatures": signatures, "config": _config()}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    from export.saved_model import export_serving

    root = tmp_path_factory.mktemp("publish")
    model_dir = str(root / "cls_dir")
    make_task_dir(
        model_dir,
        _config(),
        TINY_VOCAB,
        {"type": "classify", "label_names": ["a", "b"]},
        seq_length=SEQ,
    )
    base = str(root / "serving" / "cls")
    os.makedirs(base)
    leftovers = _plant_leftovers(base)
    handler = _Capture()
    logging.getLogger("export.publish").addHandler(handler)
    old_mask = os.umask(0o027)
    try:
        path = export_serving(model_dir, base)
    finally:
        os.umask(old_mask)
        logging.getLogger("export.publish").removeHandler(handler)
    return {"path": path, "base": base, "leftovers": leftovers, "log": handler.lines}


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.slow  # keeps the default suite near 15 min; the slow suite runs it
def test_squad_request_over_the_token_budget_is_invalid_argument(squad, tmp_path):
    import tensorflow as tf

    from export.saved_model import write_settings

    fn = squad["signatures"]["serving_default"]
    ok = fn(question=tf.constant(["who ?"]), context=tf.constant(["john lives in paris"]))
    assert ok["answer"].shape == (1,)
    long_context = "the quick brown fox " * 20  # 80 pieces: 1 + ceil(69 / 4) = 19
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"SQuAD request needs 304 tokens \(19 context windows x "
        r"seq_length 16\); this export answers at most 48 per request "
        r"\(export.saved_model --max_request_tokens\)",
    ):
        fn(question=tf.constant(["who ?"]), context=tf.constant([long_context]))
    # the cap is per request: two contexts of 2 windows each (15 pieces) are 4 > 3
    two = "the quick brown fox jumps over the lazy dog is hello world good bad movie"
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(4 context windows x"):
        fn(question=tf.constant(["who ?"] * 2), context=tf.constant([two] * 2))
    assert fn(question=tf.constant(["who ?"]), context=tf.constant([two]))["answer"].shape == (1,)
    write_settings(str(tmp_path), squad["module"])
    with open(os.path.join(tmp_path, "assets.extra", "export_settings.json")) as f:
        settings = json.load(f)
    assert settings["max_request_tokens"] == MAX_TOKENS and settings["seq_length"] == SEQ


def _capped(tmp_path_factory, task):
    from export.saved_model import build_serving_module

    model_dir = str(tmp_path_factory.mktemp("capped") / task["type"])
    model = make_task_dir(model_dir, _config(), TINY_VOCAB, task, seq_length=SEQ)
    module, signatures = build_serving_module(model_dir, model=model, max_request_tokens=MAX_TOKENS)
    return module, signatures["serving_default"], model


def test_tag_and_classify_requests_over_the_token_budget_are_invalid_argument(
    tmp_path_factory, tmp_path
):
    """Windows of SEQ - 2 = 14 pieces, 7 apart: 15 pieces are 2 windows, 80 pieces 11."""
    import tensorflow as tf

    from export.saved_model import write_settings
    from tests.export.tiny_dirs import CLASS_LABELS, TAG_LABELS

    two = "the quick brown fox jumps over the lazy dog is hello world good bad movie"
    long_text = "the quick brown fox " * 20
    for task, what in (
        ({"type": "tag", "label_names": TAG_LABELS}, "tag"),
        ({"type": "classify", "label_names": CLASS_LABELS}, "classify"),
    ):
        module, fn, _ = _capped(tmp_path_factory, task)
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=rf"{what} request needs 176 tokens \(11 windows x "
            rf"seq_length 16\); this export answers at most 48 per "
            rf"request \(export.saved_model --max_request_tokens\): "
            rf"send shorter texts",
        ):
            fn(text=tf.constant([long_text]))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\(4 windows x"):
            fn(text=tf.constant([two, two]))  # per request: 2 + 2 > 3
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"needs 64 tokens \(4 w"):
            fn(text=tf.constant(["a", "b", "c", "d"]))  # one window per short text
        out = fn(text=tf.constant([two, "hello world"]))  # 2 + 1 = 3: answered
        assert next(iter(out.values())).shape[0] == 2
        write_settings(str(tmp_path / what), module)
        with open(os.path.join(tmp_path, what, "assets.extra", "export_settings.json")) as f:
            assert json.load(f)["max_request_tokens"] == MAX_TOKENS


def _truncate_pair(a, b, budget):
    """The original BERT's _truncate_seq_pair: pop from the longer one (b on ties)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        (a if len(a) > len(b) else b).pop()
    return a, b


def test_text_pairs_longer_than_seq_length_are_truncated_longest_first(tmp_path_factory):
    """Pairs are NOT windowed: they are truncated longest-first to seq_length as fine-tuning
    trains and evaluates them (the original run_classifier.py), one model row per pair (so a
    request of 4 pairs is over a cap of 3)."""
    import tensorflow as tf

    import bert_tf
    from tests.export.tiny_dirs import CLASS_LABELS

    _, fn, model = _capped(
        tmp_path_factory, {"type": "classify", "label_names": CLASS_LABELS, "text_b": "text_b"}
    )
    rng = np.random.default_rng(0)
    for v in model.weights:  # logits that depend on every piece
        v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
    vocab = list(TINY_VOCAB)
    words = [w for w in vocab[5:] if not w.startswith("##")]
    pairs = [
        (" ".join(rng.choice(words, 3)), " ".join(rng.choice(words, 40))),
        (" ".join(rng.choice(words, 30)), " ".join(rng.choice(words, 30))),
        (" ".join(rng.choice(words, 5)), ""),
    ]
    out = fn(text=tf.constant([a for a, _ in pairs]), text_b=tf.constant([b for _, b in pairs]))
    tok = bert_tf.BertTokenizer(vocab=vocab, lower_case=True)
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    for i, (a, b) in enumerate(pairs):
        ta, tb = (tok.tokenize(tf.constant([x])).to_list()[0] for x in (a, b))
        ka, kb = _truncate_pair(ta, tb, SEQ - 3)
        ids = np.array([[cls] + ka + [sep] + kb + [sep]], np.int32)
        types = np.array([[0] * (len(ka) + 2) + [1] * (len(kb) + 1)], np.int32)
        logits = model(
            {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": types},
            training=False,
        )["logits"]
        np.testing.assert_allclose(out["probabilities"][i], tf.nn.softmax(logits)[0], atol=1e-5)
    assert [len(x) for x in _truncate_pair(range(3), range(40), SEQ - 3)] == [3, 10]
    assert [len(x) for x in _truncate_pair(range(30), range(30), SEQ - 3)] == [7, 6]
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"classify request needs 64 tokens \(4 windows x seq_length 16",
    ):
        fn(text=tf.constant(["a"] * 4), text_b=tf.constant(["b"] * 4))


@pytest.mark.parametrize("max_rows,rows", [(None, [1, 2]), (MAX_WINDOWS, [1, 2]), (1, [1])])
def test_warmup_requests_fit_the_window_cap(squad, max_rows, rows):
    """A warm-up record over the cap would make TF Serving refuse the whole version."""
    import tensorflow as tf

    from export.serving.warmup import warmup_inputs

    requests = warmup_inputs(squad["module"].task, max_rows)
    assert [len(r["question"]) for r in requests] == rows
    for request in requests:
        out = squad["signatures"]["serving_default"](
            **{k: tf.constant(v) for k, v in request.items()}
        )
        assert out["answer"].shape == (len(request["question"]),)


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("input_word_ids", -1, "input_word_ids must be in \\[0, {vocab}\\)"),
        ("input_word_ids", "vocab", "input_word_ids must be in \\[0, {vocab}\\)"),
        ("input_type_ids", -1, "input_type_ids must be in \\[0, 2\\)"),
        ("input_type_ids", 2, "input_type_ids must be in \\[0, 2\\)"),
        ("input_mask", 2, "input_mask must be 0 or 1"),
    ],
)
def test_serving_encoded_refuses_ids_outside_the_embeddings(squad, name, value, message):
    import tensorflow as tf

    vocab = squad["config"].vocab_size
    inputs = {
        "input_word_ids": np.array([[2, 10, 3]], np.int32),
        "input_mask": np.ones((1, 3), np.int32),
        "input_type_ids": np.zeros((1, 3), np.int32),
    }
    fn = squad["signatures"]["serving_encoded"]
    good = fn({k: tf.constant(v) for k, v in inputs.items()})
    assert good["start_logits"].shape == (1, 3)
    inputs[name][0, 1] = vocab if value == "vocab" else value
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.format(vocab=vocab)):
        fn({k: tf.constant(v) for k, v in inputs.items()})


def test_serving_encoded_refuses_sequences_over_max_positions(squad):
    import tensorflow as tf

    ids = tf.fill([1, 33], 5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence length must be at most 32"):
        squad["signatures"]["serving_encoded"](
            {
                "input_word_ids": ids,
                "input_mask": tf.ones_like(ids),
                "input_type_ids": tf.zeros_like(ids),
            }
        )


def test_published_version_is_readable_as_the_umask_allows(published):
    path = published["path"]
    modes = {}
    for parent, dirs, files in os.walk(path):
        for name in dirs + files + ([] if parent != path else ["."]):
            full = os.path.normpath(os.path.join(parent, name))
            modes[os.path.relpath(full, path)] = stat.S_IMODE(os.stat(full).st_mode)
    assert modes["."] == 0o750  # umask 027 at export time
    assert modes["variables"] == 0o750 and modes["saved_model.pb"] == 0o640
    assert modes[os.path.join("assets.extra", "tf_serving_warmup_requests")] == 0o640
    assert set(modes.values()) == {0o750, 0o640}, modes
    with open(os.path.join(path, "assets.extra", "export_settings.json")) as f:
        assert json.load(f) == {
            "task": "classify",
            "seq_length": SEQ,
            "pad_to_longest": True,
            "max_request_bytes": 262_144,  # the default budget
            "max_request_tokens": 65_536,
        }


def test_apply_default_modes_gives_0755_and_0644_with_umask_022(tmp_path):
    import tempfile

    from bert_tf.file_modes import apply_default_modes, current_umask

    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        root = tempfile.mkdtemp(dir=tmp_path)  # 0700
        os.makedirs(os.path.join(root, "a", "b"))
        fd, name = tempfile.mkstemp(dir=os.path.join(root, "a"))  # 0600
        os.close(fd)
        apply_default_modes(root)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(root, "a", "b")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o644


def test_stale_temp_dirs_of_killed_exports_are_removed_with_a_log_line(published):
    left = sorted(n for n in os.listdir(published["base"]) if n.startswith(".export-"))
    assert left == sorted(n for n, keep in published["leftovers"].items() if keep)
    removed = [n for n, keep in published["leftovers"].items() if not keep]
    assert len(published["log"]) == 1
    (line,) = published["log"]
    assert line.startswith(
        f"removed stale export temp dir "
        f"{os.path.join(published['base'], removed[0])} (its export process"
    )
    assert sorted(n for n in os.listdir(published["base"]) if not n.startswith(".")) == ["1"]
    from bert_tf.ownership import OWNER_MARK

    assert not os.path.exists(os.path.join(published["path"], OWNER_MARK))


def test_clean_up_never_touches_other_hosts_or_unmarked_dirs(tmp_path):
    from export.publish import clean_stale_temp_dirs

    other = tmp_path / f".export-not-{socket.gethostname()}x-{_dead_pid()}-abcd1234"
    other.mkdir()
    _mark(str(other), _dead_pid(), host="not-" + socket.gethostname())
    (tmp_path / ".export-backup").mkdir()
    (tmp_path / ".export-backup" / "notes.txt").write_text("mine")
    assert clean_stale_temp_dirs(str(tmp_path)) == []
    assert sorted(os.listdir(tmp_path)) == sorted([".export-backup", other.name])


@pytest.mark.slow  # a fresh process importing tensorflow
def test_flag_is_documented_and_checked(tmp_path):
    from tests.conftest import ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = [sys.executable, "-m", "export.saved_model"]
    helpfull = subprocess.run(
        run + ["--helpfull"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    for flag, default in (("max_request_bytes", 262144), ("max_request_tokens", 65536)):
        assert re.search(
            rf"--{flag}: Every task: .*\n(.*\n)*?\s+\(default: '{default}'\)", helpfull.stdout
        ), flag
    assert "--max_windows_per_request: Deprecated" in helpfull.stdout
    model_dir = str(tmp_path / "qa")
    make_task_dir(model_dir, _config(), TINY_VOCAB, {"type": "squad"}, seq_length=SEQ)
    for flags, message in (
        (["--max_windows_per_request=0"], "max_windows_per_request=0: expected >= 1"),
        (
            ["--max_request_tokens=15"],
            "max_request_tokens=15: expected >= 16 (seq_length: one row)",
        ),
        (
            ["--max_windows_per_request=2", "--max_request_tokens=64"],
            "max_windows_per_request (deprecated) and max_request_tokens: give only "
            "max_request_tokens (windows x seq_length)",
        ),
    ):
        bad = subprocess.run(
            run + [f"--model_dir={model_dir}", f"--output_dir={tmp_path / 'out'}"] + flags,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode != 0
        assert bad.stderr.strip().splitlines()[-1] == f"export.saved_model: {message}"
    assert not os.path.exists(tmp_path / "out")
