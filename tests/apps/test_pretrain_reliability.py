"""apps.pretrain reliability: a damaged record file mid-shard (one line naming it, or skipped
with --skip_corrupt_records), reruns on a model dir that holds a run (same: resume or
complete; other data: refused), all on the tiny corpus of test_pretrain."""

import json
import logging
import os
import re
import shutil

import pytest

from bert_tf.recipes.pretraining.records import CorruptRecordError
from bert_tf.recipes.run_record import RunMismatchError
from tests.apps.test_pretrain import data, run_job  # noqa: F401


def copy_records(data, split, root):  # noqa: F811
    """The split's shard and metadata copied into `root`; returns the shard's path."""
    root.mkdir()
    for name in os.listdir(data["root"]):
        if name.startswith(split) and not name.endswith(".txt"):
            shutil.copy(data["root"] / name, root / name)
    return next(root.glob(f"{split}-*.tfrecord"))


def damaged_copy(data, tmp_path):  # noqa: F811
    """The training shard and its metadata copied, with one byte flipped mid-file."""
    root = tmp_path / "records"
    shard = copy_records(data, "train", root)
    size = os.path.getsize(shard)
    with open(shard, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    return str(root / "train-*.tfrecord"), str(shard)


def test_corrupt_record_mid_shard_is_one_line_naming_the_file(data, tmp_path):  # noqa: F811
    pattern, shard = damaged_copy(data, tmp_path)
    model_dir = str(tmp_path / "model")
    with pytest.raises(CorruptRecordError) as e:
        run_job(data, model_dir, input_files=pattern)
    message = str(e.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"--input_files: {re.escape(shard)}: record (\d+) is corrupt or truncated at byte "
        r"offset (\d+) \(corrupted record at \d+\); rerun with --skip_corrupt_records to "
        r"train on without the rest of that file",
        message,
    ), message


@pytest.mark.slow  # three pretrain subprocesses (~1.5 min); the one-line error test above is fast
def test_skip_corrupt_records_goes_on_and_a_rerun_reads_the_same(
    data,
    tmp_path,  # noqa: F811
    capsys,
):
    pattern, shard = damaged_copy(data, tmp_path)
    model_dir = str(tmp_path / "model")
    run_job(data, model_dir, input_files=pattern, skip_corrupt_records=True)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "--skip_corrupt_records" in line]
    assert len(lines) == 1, out
    m = re.search(
        rf"--skip_corrupt_records: {re.escape(shard)}: record (\d+) is corrupt or "
        r"truncated at byte offset (\d+) \(corrupted record at \d+\); keeping its "
        r"first (\d+) records, skipping the rest \((\d+) bytes\); 1 file\(s\) cut so "
        r"far \(listed in skipped_records.json\); continuing at step 0",
        lines[0],
    )
    assert m, lines[0]
    kept, offset, skipped = int(m.group(3)), int(m.group(2)), int(m.group(4))
    assert int(m.group(1)) == kept + 1 and offset + skipped == os.path.getsize(shard)
    assert 8 <= kept and offset < os.path.getsize(shard) // 2 + 1
    recorded = json.load(open(os.path.join(model_dir, "skipped_records.json")))
    assert recorded[shard]["good_records"] == kept and recorded[shard]["offset"] == offset
    assert json.load(open(os.path.join(model_dir, "eval_results.json")))["step"] == 6
    # Continuing the run: the recorded cut applies at once, nothing fails or is logged again.
    run_job(data, model_dir, steps=9, input_files=pattern, skip_corrupt_records=True)
    out = capsys.readouterr().out
    assert "--skip_corrupt_records:" not in out and "restored" in out
    assert json.load(open(os.path.join(model_dir, "eval_results.json")))["step"] == 9


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):  # noqa: F811
    model_dir = str(tmp_path_factory.mktemp("finished") / "model")
    run_job(data, model_dir, steps=3)
    return model_dir


def _digests(path):
    return {
        name: open(os.path.join(path, name), "rb").read()
        for name in sorted(os.listdir(path))
        if os.path.isfile(os.path.join(path, name))
    }


def test_identical_rerun_of_a_finished_run_changes_nothing(
    data,
    finished,
    tmp_path,  # noqa
    capsys,
):
    model_dir = str(tmp_path / "model")
    shutil.copytree(finished, model_dir)
    before = _digests(model_dir)
    results = run_job(data, model_dir, steps=3)
    out = capsys.readouterr().out
    assert (
        f"[pretrain] {model_dir} is already complete (step 3, same settings and data; "
        "masked_lm_accuracy=" in out
    )
    assert results == json.load(open(os.path.join(finished, "eval_results.json")))
    assert _digests(model_dir) == before


def test_model_dir_recorded_before_encoder_config_was_named_so(
    data,
    finished,  # noqa: F811
    tmp_path,
    capsys,
    caplog,
):
    """An older bert-tf recorded the encoder config as "training"."config": the identical
    rerun is still the same run (complete, nothing written), and the record reads with no
    setting ignored."""
    model_dir = str(tmp_path / "model")
    shutil.copytree(finished, model_dir)
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        values = json.load(f)
    values["training"]["config"] = values["training"].pop("encoder_config")
    with open(path, "w") as f:
        json.dump(values, f)
    before = _digests(model_dir)
    with caplog.at_level(logging.WARNING):
        results = run_job(data, model_dir, steps=3)
    assert f"[pretrain] {model_dir} is already complete (step 3, " in capsys.readouterr().out
    assert "ignoring settings" not in caplog.text
    assert results == json.load(open(os.path.join(finished, "eval_results.json")))
    assert _digests(model_dir) == before


def test_rerun_with_other_training_data_is_refused(data, finished, tmp_path):  # noqa: F811
    model_dir = str(tmp_path / "model")
    shutil.copytree(finished, model_dir)
    before = _digests(model_dir)
    with pytest.raises(RunMismatchError) as e:
        run_job(data, model_dir, steps=6, input_files=data["eval"])
    assert str(e.value) == (
        f"{model_dir} was made by a different run (input_files content differs (e.g. "
        "eval-00000-of-00001.tfrecord is new or changed; 1 of 1 files)); use a new "
        "--model_dir, or --overwrite_model_dir to start over"
    )
    assert _digests(model_dir) == before
    with pytest.raises(RunMismatchError, match=r"\(learning_rate=0.001 recorded, 0.002 now\)"):
        run_job(data, model_dir, steps=6, learning_rate=2e-3)


def test_corrupt_eval_record_is_one_line_naming_the_file(data, finished, tmp_path):  # noqa
    root = tmp_path / "eval"
    shard = copy_records(data, "eval", root)
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) * 2 // 3)
    model_dir = str(tmp_path / "model")
    shutil.copytree(finished, model_dir)
    with pytest.raises(CorruptRecordError) as e:
        run_job(data, model_dir, steps=3, eval_files=str(root / "eval-*.tfrecord"))
    assert re.fullmatch(
        rf"--eval_files: {re.escape(str(shard))}: record \d+ is corrupt or "
        r"truncated at byte offset \d+ \(truncated record at \d+\); replace "
        r"or remove that file",
        str(e.value),
    ), str(e.value)
