"""apps.finetune on a model dir that already holds a run: an identical rerun of a finished
run changes nothing, other data or settings are refused in one line, --overwrite_model_dir
starts over, a full disk names the file and the last good checkpoint, a held lock refuses."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.apps.test_finetune import FIXTURES, common, read, run_app, tiny_model_dir  # noqa: F401
from tests.conftest import ROOT


def args_for(init, out, train="classify_train.tsv", **extra):
    extra = {"epochs": 1, "batch_size": 4, "learning_rate": 2e-3, "max_seq_length": 64, **extra}
    return ["--task=classify"] + common(init, out, train, "classify_eval.tsv", **extra)


def digests(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, directory)] = hashlib.sha256(
                open(path, "rb").read()
            ).hexdigest()
    return out


@pytest.fixture(scope="module")
def finished(tiny_model_dir, tmp_path_factory):  # noqa: F811
    out = str(tmp_path_factory.mktemp("finished") / "run")
    run_app(args_for(tiny_model_dir, out))
    return out


def copy_run(finished, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    return out


def test_identical_rerun_is_complete_and_writes_nothing(tiny_model_dir, finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path)
    # The same content under another path is the same input.
    moved = tmp_path / "moved.tsv"
    shutil.copy(os.path.join(FIXTURES, "classify_train.tsv"), moved)
    before = digests(out)
    args = args_for(tiny_model_dir, out)
    args[args.index(f"--train_file={os.path.join(FIXTURES, 'classify_train.tsv')}")] = (
        f"--train_file={moved}"
    )
    run_app(args)
    printed = capsys.readouterr().out
    assert (
        f"{out} is already complete (same settings and inputs; best epoch 1: accuracy=" in printed
    )
    assert digests(out) == before


# What config.json "training" held before each task owned its settings: every task's
# settings, flat, beside the common ones (here the defaults of the tasks other than classify).
OTHER_TASKS_OLD_KEYS = {
    "tag_scheme": "iob",
    "max_query_length": 64,
    "max_answer_length": 30,
    "n_best_size": 20,
    "null_score_diff_threshold": 0.0,
    "version_2_with_negative": None,
    "squad_offset_errors": "warn",
}


@pytest.mark.parametrize(
    "old_values, refused",
    [
        ({}, None),
        ({"text_a_column": "text"}, "text_a_column='text' recorded, 'sentence' now"),
        ({"doc_stride": 8}, "doc_stride=8 recorded, None now"),
    ],
)
def test_a_record_of_the_flat_layout_still_reruns(
    tiny_model_dir, finished, tmp_path, capsys, old_values, refused
):
    """A model dir written when every task's settings sat flat in FinetuneConfig: the same
    run is still complete; a task setting that differs is still refused."""
    out = copy_run(finished, tmp_path)
    path = os.path.join(out, "config.json")
    config = read(path)
    assert set(OTHER_TASKS_OLD_KEYS).isdisjoint(config["training"])  # written flat, own only
    assert config["training"]["text_a_column"] == "sentence"
    config["training"].update(OTHER_TASKS_OLD_KEYS, **old_values)
    with open(path, "w") as f:
        json.dump(config, f)
    before = digests(out)
    if refused is None:
        run_app(args_for(tiny_model_dir, out))
        assert f"{out} is already complete" in capsys.readouterr().out
    else:
        with pytest.raises(SystemExit) as e:
            run_app(args_for(tiny_model_dir, out))
        assert f"was made by a different run ({refused})" in str(e.value), str(e.value)
    assert digests(out) == before


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            "data",
            r"train_file content differs \(sha256 [0-9a-f]{12}\.\.\. recorded, "
            r"[0-9a-f]{12}\.\.\. now\)",
        ),
        ("setting", r"learning_rate=0\.002 recorded, 0\.001 now"),
    ],
)
def test_rerun_with_other_data_or_settings_is_refused(
    tiny_model_dir, finished, tmp_path, change, expected
):
    out = copy_run(finished, tmp_path)
    before = digests(out)
    if change == "data":
        other = tmp_path / "other.tsv"
        text = open(os.path.join(FIXTURES, "classify_train.tsv")).read()
        other.write_text(text.replace("\tpos\n", "\tneg\n", 1))
        args = args_for(tiny_model_dir, out)
        args = [a if not a.startswith("--train_file=") else f"--train_file={other}" for a in args]
    else:
        args = args_for(tiny_model_dir, out, learning_rate=1e-3)
    with pytest.raises(SystemExit) as e:
        run_app(args)
    text = str(e.value)
    assert text.startswith(f"finetune: {out} was made by a different run (") and "\n" not in text
    assert text.endswith("); use a new --model_dir, or --overwrite_model_dir to start over")
    import re

    assert re.search(expected, text), text
    assert digests(out) == before


def test_overwrite_model_dir_starts_over(tiny_model_dir, finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path)
    run_app(args_for(tiny_model_dir, out, learning_rate=1e-3) + ["--overwrite_model_dir"])
    printed = capsys.readouterr().out
    assert (
        "--overwrite_model_dir: removed the previous run's checkpoints, config.json, "
        "eval_results.json" in printed
    )
    config = read(os.path.join(out, "config.json"))
    assert config["training"]["learning_rate"] == 1e-3
    fingerprint = config["training"]["input_fingerprints"]["train_file"]
    data = open(os.path.join(FIXTURES, "classify_train.tsv"), "rb").read()
    assert fingerprint == {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "method": "full",
    }
    assert read(os.path.join(out, "eval_results.json"))["global_step"] > 0


def test_disk_full_writing_eval_results(tiny_model_dir, tmp_path, monkeypatch):
    from bert_tf import atomic_io

    out = str(tmp_path / "run")
    real = atomic_io.tempfile.mkstemp

    def mkstemp(*a, **kw):
        if kw.get("prefix", "").startswith(".eval_results.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **kw)

    monkeypatch.setattr(atomic_io.tempfile, "mkstemp", mkstemp)
    with pytest.raises(SystemExit) as e:
        run_app(args_for(tiny_model_dir, out))
    steps = read(os.path.join(out, "finetune_state.json"))["history"][-1]["step"]
    assert str(e.value) == (
        f"finetune: cannot write {out}/eval_results.json: no space left on device; its "
        f"previous version, if any, is unchanged; the last good checkpoint is "
        f"{out}/checkpoints/ckpt-{steps} (step {steps})"
    )
    assert not [n for n in os.listdir(out) if n.startswith(".eval_results")]
    monkeypatch.undo()
    run_app(args_for(tiny_model_dir, out))  # space freed: the rerun finishes
    assert read(os.path.join(out, "eval_results.json"))["global_step"] == steps


def test_second_run_on_a_locked_model_dir_is_refused(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, types; p = types.ModuleType('bert_tf'); "
            f"p.__path__ = [{ROOT!r} + '/bert_tf']; sys.modules['bert_tf'] = p; "
            "from bert_tf.run_lock import RunLock; "
            f"RunLock({str(out)!r}).acquire(); print('LOCKED', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(SystemExit) as e:
            run_app(args_for(tiny_model_dir, str(out)))
        assert str(e.value).startswith(
            f"finetune: {out} is in use by another run: PID {holder.pid} on host "
        )
        assert os.listdir(out) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
