"""Content fingerprints of input files (bert_tf/fingerprint.py) and model-dir writes on a full
disk (bert_tf/model_dir/)."""

import errno
import hashlib
import os

import keras
import pytest

from bert_tf import fingerprint as fp
from bert_tf import model_dir as md


def test_small_file_full_hash_ignores_mtime_and_path(tmp_path):
    a = tmp_path / "a.tsv"
    a.write_bytes(b"sentence\tlabel\ngood\tpos\n")
    first = fp.fingerprint(str(a))
    assert first == {
        "size": 24,
        "method": "full",
        "sha256": hashlib.sha256(a.read_bytes()).hexdigest(),
    }
    os.utime(a, (0, 0))
    b = tmp_path / "b.tsv"
    b.write_bytes(a.read_bytes())
    assert fp.fingerprint(str(a)) == first == fp.fingerprint(str(b))
    a.write_bytes(b"sentence\tlabel\ngood\tneg\n")  # same size, new content
    assert fp.fingerprint(str(a))["sha256"] != first["sha256"]


def test_large_file_sampled_hash_sees_ends_and_size(tmp_path):
    big = tmp_path / "big.tfrecord"
    size = fp.FULL_HASH_LIMIT + 3 * fp.BLOCK
    with open(big, "wb") as f:
        f.truncate(size)
    first = fp.fingerprint(str(big))
    zero = bytes(fp.BLOCK)
    expected = hashlib.sha256(size.to_bytes(8, "little") + zero + zero).hexdigest()
    assert first == {"size": size, "method": "sampled", "sha256": expected}
    with open(big, "r+b") as f:  # the last MiB changes
        f.seek(size - 10)
        f.write(b"x")
    assert fp.fingerprint(str(big))["sha256"] != first["sha256"]


def test_file_sets_name_the_changed_file(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"shard-{i}"))
        open(paths[-1], "w").write(f"records {i}")
    old = fp.files_fingerprint(paths)
    open(paths[1], "w").write("other records")
    new = fp.files_fingerprint(paths)
    assert fp.describe_differences({"input_files": old}, {"input_files": new}) == [
        "input_files content differs (e.g. shard-1 is new or changed; 1 of 3 files)"
    ]
    assert fp.describe_differences({"input_files": old}, {"input_files": old}) == []


def test_save_weights_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    d = md.ModelDir(str(tmp_path))
    d.save_weights(model)
    before = open(d.weights_path, "rb").read()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-4.index").write_bytes(b"")
    (tmp_path / "checkpoints" / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-4"\nall_model_checkpoint_paths: "ckpt-4"\n'
    )

    def full(path, *a, **k):
        open(path, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_weights", full)
    with pytest.raises(md.ModelDirWriteError) as e:
        d.save_weights(model)
    assert str(e.value) == (
        f"cannot write {d.weights_path}: no space left on device; its previous version, if "
        f"any, is unchanged; the last good checkpoint is {tmp_path}/checkpoints/ckpt-4 "
        "(step 4)"
    )
    assert open(d.weights_path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", md.WEIGHTS_FILE]
