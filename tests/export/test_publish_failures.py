"""Exports under failure: a full disk is one line naming the last good export, and leaves no
temp dir; Hub dirs get the same readable modes as serving versions."""

import errno
import os
import stat

import pytest

from tests.export.tiny_dirs import hub_exports, task_exports


def _expected_modes():
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask, 0o666 & ~umask


def test_hub_dirs_are_readable_by_a_server_of_another_user(tmp_path_factory):
    _, _, pre_dir, enc_dir = hub_exports(tmp_path_factory)
    dir_mode, file_mode = _expected_modes()
    for root_dir in (pre_dir, enc_dir):
        assert stat.S_IMODE(os.stat(root_dir).st_mode) == dir_mode, root_dir  # not 0700
        for parent, dirs, files in os.walk(root_dir):
            for name in dirs:
                assert stat.S_IMODE(os.stat(os.path.join(parent, name)).st_mode) == dir_mode
            for name in files:
                assert stat.S_IMODE(os.stat(os.path.join(parent, name)).st_mode) == file_mode
    leftovers = [n for n in os.listdir(os.path.dirname(pre_dir)) if n.startswith(".")]
    assert leftovers == []


def test_disk_full_during_export_names_the_last_good_version(tmp_path_factory, monkeypatch):
    import export.saved_model as sm
    import export.serving.writer as writer

    model_dir, _, version_dir = task_exports(tmp_path_factory)["classify"]
    base = os.path.dirname(version_dir)
    before = sorted(os.listdir(base))

    def full_disk(module, path, signatures):
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, "save_module", full_disk)
    with pytest.raises(sm.ExportError) as info:
        sm.export_serving(model_dir, base, warmup=False)
    last = os.path.join(base, str(max(int(n) for n in before if n.isdigit())))
    assert str(info.value) == (
        f"cannot write {os.path.join(base, str(int(os.path.basename(last)) + 1))}: no space left "
        f"on device; nothing was published (its temp dir was removed) and the last good export "
        f"is {last}, unchanged"
    )
    assert sorted(os.listdir(base)) == before  # no new version, no temp dir
    assert os.path.isfile(os.path.join(last, "saved_model.pb"))
