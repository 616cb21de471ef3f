"""bert_tf/ownership.py: bert-tf replaces or removes only what it wrote. Each test builds the
situation and checks that every byte the user had is still there (a hash of the whole tree,
symlinks and their targets included, before and after). The guard functions directly; the
apps' wiring is in tests/apps/test_data_loss.py."""

import json
import os
import subprocess
import sys
import time

import pytest

from bert_tf import ownership
from bert_tf.ownership import OwnershipError
from tests.ownership_cases import home_like, legacy_model_dir, tree, write

RUN_WRITES = (
    "config.json",
    "vocab.txt",
    "model.weights.h5",
    "checkpoints",
    "logs",
    "eval_results.json",
    "finetune_state.json",
    "predictions.jsonl",
)


def test_overwrite_refuses_a_folder_bert_tf_never_wrote(tmp_path):
    home = home_like(tmp_path / "home")
    before = tree(tmp_path)
    with pytest.raises(OwnershipError) as e:
        ownership.plan_model_dir(home, "finetune", RUN_WRITES, overwrite=True)
    assert str(e.value) == (
        f"--model_dir={home} holds files bert-tf did not write (Documents/, checkpoints/, "
        "config.json, eval_results.json and 3 more); --overwrite_model_dir removes only what "
        "bert-tf wrote and refuses a directory holding anything else: move them or use a new "
        "--model_dir"
    )
    with pytest.raises(
        OwnershipError,
        match=r"holds checkpoints/, config.json, "
        r"eval_results.json, logs/ and 1 more, which "
        r"bert-tf did not write and this run would "
        r"replace; use an empty or new --model_dir",
    ):
        ownership.plan_model_dir(home, "pretrain", RUN_WRITES)  # without the flag
    assert tree(tmp_path) == before


def test_a_symlinked_model_dir_gets_the_same_rules(tmp_path):
    home = home_like(tmp_path / "home")
    link = tmp_path / "link"
    link.symlink_to(home)
    before = tree(tmp_path)
    for overwrite in (True, False):
        with pytest.raises(OwnershipError, match="bert-tf did not write"):
            ownership.plan_model_dir(str(link), "finetune", RUN_WRITES, overwrite=overwrite)
    assert tree(tmp_path) == before


def test_no_config_json_user_vocab_and_results_are_not_replaced(tmp_path):
    model_dir = tmp_path / "run"
    write(str(model_dir / "vocab.txt"))
    write(str(model_dir / "eval_results.json"), '{"accuracy": 0.93}')
    before = tree(tmp_path)
    with pytest.raises(
        OwnershipError,
        match=r"holds eval_results.json, vocab.txt, which "
        r"bert-tf did not write",
    ):
        ownership.plan_model_dir(str(model_dir), "finetune", RUN_WRITES)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["bert_tf", "hf", "google_prefix", "inside", "contains"])
def test_model_dir_apart_from_the_init_checkpoint(tmp_path, kind):
    init = tmp_path / "pretrained"
    write(str(init / "config.json"))
    write(str(init / "model.safetensors"))
    source, model_dir = str(init), str(init)
    if kind == "google_prefix":
        source = str(init / "bert_model.ckpt")
        write(source + ".index")
    elif kind == "inside":
        model_dir = str(init / "run")
    elif kind == "contains":
        model_dir = str(tmp_path)
    relation = {"inside": "lies inside", "contains": "contains"}.get(kind, "is")
    before = tree(tmp_path)
    with pytest.raises(OwnershipError) as e:
        ownership.plan_model_dir(
            model_dir,
            "finetune",
            RUN_WRITES,
            overwrite=True,
            sources=[("--init_checkpoint", source)],
        )
    assert str(e.value) == (
        f"--model_dir={model_dir} {relation} --init_checkpoint={source}; "
        "write to a directory apart from what the run reads"
    )
    # through a symlink too
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(init)
    with pytest.raises(OwnershipError, match=" is --init_checkpoint="):
        ownership.plan_model_dir(
            str(link), "pretrain", RUN_WRITES, sources=[("--init_checkpoint", str(init))]
        )
    assert tree(tmp_path) == before


def test_a_checkpoint_bert_tf_wrote_and_the_run_keeps_may_lie_inside_the_model_dir(tmp_path):
    """The default job's final phase reads phase 1 from <model_dir>/phase1_seq64 (recorded as
    the default job's, never written or removed by a run); a user's checkpoint inside the
    model dir, or one inside an entry the run writes, is still refused."""
    model_dir = str(tmp_path / "run")
    ownership.record(model_dir, {"phase1_seq64": "default_job"})
    write(os.path.join(model_dir, "phase1_seq64", "config.json"))
    write(os.path.join(model_dir, "mine", "config.json"))
    write(os.path.join(model_dir, "checkpoints", "old", "config.json"))
    ownership.record(model_dir, {"checkpoints": "pretrain"})
    plan = ownership.plan_model_dir(
        model_dir,
        "pretrain",
        RUN_WRITES,
        sources=[("--init_checkpoint", os.path.join(model_dir, "phase1_seq64"))],
    )
    assert plan.removes == ()
    for inner in ("mine", os.path.join("checkpoints", "old")):
        with pytest.raises(OwnershipError, match=" contains --init_checkpoint="):
            ownership.plan_model_dir(
                model_dir,
                "pretrain",
                RUN_WRITES,
                sources=[("--init_checkpoint", os.path.join(model_dir, inner))],
            )


def test_symlinked_logs_is_refused_before_anything_is_removed(tmp_path):
    model_dir = legacy_model_dir(tmp_path / "run")
    outside = tmp_path / "elsewhere"
    write(str(outside / "events.out"))
    os.rename(os.path.join(model_dir, "logs"), tmp_path / "old_logs")
    os.symlink(outside, os.path.join(model_dir, "logs"))
    before = tree(tmp_path)
    for overwrite in (True, False):
        with pytest.raises(OwnershipError) as e:
            ownership.plan_model_dir(model_dir, "finetune", RUN_WRITES, overwrite=overwrite)
        assert str(e.value) == (
            f"--model_dir={model_dir}: logs/ is a symbolic link; bert-tf "
            "writes and removes only real files and folders it made "
            "(point --model_dir at the real directory)"
        )
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", ["foreign", "owned"])
def test_an_input_among_the_paths_a_run_writes_is_refused(tmp_path, where):
    model_dir = str(tmp_path / "run")
    eval_file = os.path.join(model_dir, "predictions.jsonl")
    write(eval_file, '{"sentence": "good", "label": "pos"}\n')
    if where == "owned":  # the record lists it (an earlier run's predictions)
        ownership.record(model_dir, {"predictions.jsonl": "finetune"})
    before = tree(tmp_path)
    with pytest.raises(OwnershipError) as e:
        ownership.plan_model_dir(
            model_dir, "finetune", RUN_WRITES, inputs=[("--eval_file", eval_file)]
        )
    assert "predictions.jsonl" in str(e.value)
    if where == "owned":
        assert str(e.value) == (
            f"--eval_file={eval_file} is {eval_file}, which this run "
            f"writes or removes; move it out of {model_dir}"
        )
    assert tree(tmp_path) == before


def test_overwrite_removes_only_what_the_record_lists(tmp_path):
    model_dir = str(tmp_path / "run")
    plan = ownership.plan_model_dir(model_dir, "finetune", RUN_WRITES)
    plan.apply()
    for name in (
        "config.json",
        "checkpoints/ckpt-1.index",
        "logs/train/events",
        "predictions.jsonl",
        ".config.json.ab12cd_9",
    ):  # + atomic_io leftover
        write(os.path.join(model_dir, name))
    ownership.record(model_dir, {"data": "default_job", "m.tflite": "export.tflite"})
    write(os.path.join(model_dir, "data", "train.txt"))
    write(os.path.join(model_dir, "m.tflite"))
    kept = {k: v for k, v in tree(model_dir).items() if k.split(os.sep)[0] in ("data", "m.tflite")}
    removed = ownership.plan_model_dir(model_dir, "pretrain", RUN_WRITES, overwrite=True).apply()
    assert removed == [
        ".config.json.ab12cd_9",
        "checkpoints",
        "config.json",
        "logs",
        "predictions.jsonl",
    ]
    assert tree(model_dir) == {
        **kept,
        ".bert_tf_manifest.json": tree(model_dir)[".bert_tf_manifest.json"],
    }
    assert ownership.read_record(model_dir) == {
        **{n: "pretrain" for n in RUN_WRITES},
        "data": "default_job",
        "m.tflite": "export.tflite",
    }
    # a file the user adds later is theirs: overwrite is then refused, and it stays
    write(os.path.join(model_dir, "notes.txt"))
    before = tree(tmp_path)
    with pytest.raises(OwnershipError, match=r"holds files bert-tf did not write \(notes.txt\)"):
        ownership.plan_model_dir(model_dir, "pretrain", RUN_WRITES, overwrite=True)
    assert tree(tmp_path) == before


def test_old_model_dirs_own_their_exact_names_only(tmp_path):
    model_dir = legacy_model_dir(tmp_path / "run")
    assert ownership.foreign_entries(model_dir) == []
    assert ownership.owned_entries(model_dir)["data"] == "default_job"
    # resume / rerun: nothing in the way
    ownership.plan_model_dir(model_dir, "finetune", RUN_WRITES)
    # with a file of the user's, overwrite is refused and every byte stays
    write(os.path.join(model_dir, "my_notes.md"))
    before = tree(tmp_path)
    with pytest.raises(OwnershipError, match=r"\(my_notes.md\)"):
        ownership.plan_model_dir(model_dir, "finetune", RUN_WRITES, overwrite=True)
    assert tree(tmp_path) == before
    os.remove(os.path.join(model_dir, "my_notes.md"))
    removed = ownership.plan_model_dir(model_dir, "finetune", RUN_WRITES, overwrite=True).apply()
    assert removed == [
        "checkpoints",
        "config.json",
        "eval_results.json",
        "logs",
        "model.weights.h5",
        "predictions.jsonl",
        "vocab.txt",
    ]
    assert sorted(os.listdir(model_dir)) == [".bert_tf_manifest.json", "data"]
    # a config.json that is not bert-tf's makes every name the user's
    other = tmp_path / "other"
    write(str(other / "config.json"), '{"model_type": "bert"}')
    write(str(other / "vocab.txt"))
    assert ownership.foreign_entries(str(other)) == ["config.json", "vocab.txt"]


def test_unreadable_record_is_one_line(tmp_path):
    write(str(tmp_path / ".bert_tf_manifest.json"), "{not json")
    with pytest.raises(OwnershipError, match=r"unreadable ownership record"):
        ownership.plan_model_dir(str(tmp_path), "finetune", RUN_WRITES)


def test_replace_only_an_earlier_export_of_the_same_kind_with_overwrite(tmp_path):
    out = str(tmp_path / "exports")
    write(os.path.join(out, "notes.txt"))
    write(os.path.join(out, "model.tflite"))
    before = tree(tmp_path)
    with pytest.raises(
        OwnershipError,
        match=r"notes.txt exists and bert-tf did not write it; "
        r"it is never replaced",
    ):
        ownership.check_replace(out, ["notes.txt"], "export.tflite", overwrite=True)
    with pytest.raises(OwnershipError, match="bert-tf did not write it"):
        ownership.check_replace(out, ["model.tflite"], "export.tflite", overwrite=True)
    assert tree(tmp_path) == before
    ownership.record(out, {"model.tflite": "export.tflite", "w.h5": "finetune"})
    with pytest.raises(
        OwnershipError,
        match=r"exists \(an earlier export.tflite wrote it\); "
        r"pass --overwrite",
    ):
        ownership.check_replace(out, ["model.tflite"], "export.tflite", overwrite=False)
    assert ownership.check_replace(out, ["model.tflite"], "export.tflite", True) == ["model.tflite"]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_export_temp_dirs_only_marked_dead_ones_are_cleaned(tmp_path):
    from export import publish

    base = str(tmp_path / "serving")
    host, dead = publish._host(), _dead_pid()
    names = [
        ".export-backup",
        f".export-{host}-{dead}-nomark12",
        f".export-{host}-{dead}-a1",
        f".export-{host}-{os.getpid()}-live",
    ]
    for name in names:
        write(os.path.join(base, name, "saved_model.pb"))
        old = time.time() - 3 * 24 * 3600
        os.utime(os.path.join(base, name), (old, old))
    for name, pid in ((names[2], dead), (names[3], os.getpid())):
        ownership.write_owner_mark(os.path.join(base, name))
        mark = ownership.read_owner_mark(os.path.join(base, name))
        mark["pid"] = pid
        if pid == dead:
            mark["process_start"] = None
        write(os.path.join(base, name, ownership.OWNER_MARK), json.dumps(mark))
    kept = {k: v for k, v in tree(base).items() if not k.startswith(names[2])}
    assert publish.clean_stale_temp_dirs(base) == [os.path.join(base, names[2])]
    assert tree(base) == kept
    # a live PID reused by a later process is not the export's: gone
    mark = ownership.read_owner_mark(os.path.join(base, names[3]))
    assert not ownership.owner_is_gone(mark)
    assert ownership.owner_is_gone(dict(mark, process_start=mark["process_start"] - 1))
    assert not ownership.owner_is_gone(dict(mark, host="elsewhere", pid=dead))


def test_pretraining_outputs_never_replace_foreign_shards(tmp_path):
    from bert_tf.data.pretraining import create as pd

    out = tmp_path / "records"
    prefix = str(out / "pretraining")
    shard = str(out / "pretraining-00000-of-00001.tfrecord")
    write(shard, "someone else's records")
    before = tree(tmp_path)
    with pytest.raises(
        pd.PretrainingDataError,
        match=r"bert-tf did not write it \(1 such "
        r"files under prefix",
    ):
        pd.check_outputs(prefix, 1, True, [])
    assert tree(tmp_path) == before
    ownership.record(str(out), {os.path.basename(shard): "create_pretraining_data"})
    before = tree(tmp_path)
    with pytest.raises(pd.PretrainingDataError) as e:  # an input among the outputs
        pd.check_outputs(prefix, 1, True, [("--input_files", shard)])
    assert str(e.value) == (
        f"--input_files={shard} is {shard}, which this run writes or removes; move it out of {out}"
    )
    assert tree(tmp_path) == before
    pd.check_outputs(prefix, 1, True, [])()  # bert-tf's own: replaced
    assert ownership.read_record(str(out)) == {
        "pretraining-00000-of-00001.tfrecord": "create_pretraining_data",
        "pretraining.metadata.json": "create_pretraining_data",
    }


def test_pretraining_inputs_apart_from_what_the_run_writes(tmp_path):
    import dataclasses

    from bert_tf.recipes.pretrain_config import PretrainConfig, PretrainingJobError
    from bert_tf.recipes.pretraining import PretrainingRecipe

    model_dir = legacy_model_dir(tmp_path / "run")
    records = os.path.join(model_dir, "checkpoints", "train-00000-of-00001.tfrecord")
    write(records)
    vocab = os.path.join(model_dir, "vocab.txt")
    s = PretrainConfig(
        model_dir=model_dir,
        vocab_file=vocab,
        encoder_config="tiny",
        input_files=os.path.join(tmp_path, "elsewhere-*.tfrecord"),
    )
    write(str(tmp_path / "elsewhere-00000-of-00001.tfrecord"))
    before = tree(tmp_path)
    PretrainingRecipe(s).ownership_plan()  # resuming with the dir's own vocab.txt
    with pytest.raises(PretrainingJobError) as e:  # ... which --overwrite_model_dir removes
        PretrainingRecipe(dataclasses.replace(s, overwrite_model_dir=True)).ownership_plan()
    assert str(e.value) == (
        f"--vocab_file={vocab} is {vocab}, which this run writes or "
        f"removes; move it out of {model_dir}"
    )
    with pytest.raises(
        PretrainingJobError,
        match=r"--input_files=.*/checkpoints/train-00000-of-"
        r"00001.tfrecord lies inside .*/checkpoints, ",
    ):
        PretrainingRecipe(dataclasses.replace(s, input_files=records)).ownership_plan()
    assert tree(tmp_path) == before
