"""DIR/.lock: one run per model directory; a lock left by a killed run is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from bert_tf.run_lock import ModelDirLockedError, NotAModelDirError, RunLock
from tests.conftest import ROOT

# The holder imports bert_tf.run_lock without the package __init__ (which loads TF and Keras:
# tens of seconds on a busy machine); run_lock itself needs only the standard library.
HOLDER = """
import sys, time, types
package = types.ModuleType("bert_tf")
package.__path__ = [{root!r} + "/bert_tf"]
sys.modules["bert_tf"] = package
from bert_tf.run_lock import RunLock
lock = RunLock({path!r}).acquire()
print("LOCKED", flush=True)
time.sleep(60)
"""


def start_holder(path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(root=ROOT, path=str(path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "LOCKED"
    return proc


def test_second_run_is_refused_naming_the_holder(tmp_path):
    proc = start_holder(tmp_path)
    try:
        with pytest.raises(ModelDirLockedError) as e:
            RunLock(str(tmp_path)).acquire()
        message = str(e.value)
        assert message.startswith(
            f"{tmp_path} is in use by another run: PID {proc.pid} on "
            f"host {socket.gethostname()} since "
        )
        assert message.endswith("wait for it to finish or use another --model_dir")
        assert "\n" not in message
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_a_killed_run_is_taken_over_with_a_note(tmp_path):
    proc = start_holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = json.loads((tmp_path / ".lock").read_text())
    assert left["pid"] == proc.pid
    notes = []
    with RunLock(str(tmp_path), log=notes.append):
        mine = json.loads((tmp_path / ".lock").read_text())
        assert mine["pid"] == os.getpid() and mine["host"] == socket.gethostname()
    assert len(notes) == 1 and notes[0].startswith(
        f"taking over the stale lock {tmp_path}/.lock of a run that ended without releasing "
        f"it: PID {proc.pid} on host {socket.gethostname()}"
    )
    assert (tmp_path / ".lock").read_text() == ""  # released, file kept (not ours)


def test_lock_of_another_host_is_not_guessed_dead(tmp_path):
    (tmp_path / ".lock").write_text(
        json.dumps({"pid": 1, "host": "elsewhere", "started": "2026-01-01T00:00:00+00:00"})
    )
    with pytest.raises(
        ModelDirLockedError, match="names a run on another host: PID 1 on host elsewhere"
    ):
        RunLock(str(tmp_path)).acquire()


def test_a_run_that_created_the_dir_leaves_nothing_when_it_wrote_nothing(tmp_path):
    target = tmp_path / "new"
    with RunLock(str(target)):
        assert (target / ".lock").exists()
    assert not target.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotAModelDirError, match="is an existing file, not a directory"):
        RunLock(str(tmp_path / "file")).acquire()


def test_released_lock_lets_the_next_run_in(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    for _ in range(2):
        start = time.time()
        with RunLock(str(tmp_path), log=pytest.fail):
            pass
        assert time.time() - start < 1
