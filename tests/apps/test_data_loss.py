"""Issue 18, section 1: every case where an app deleted or replaced what the user had, run
through the app itself. Each builds the situation, runs the app, and checks the one-line
refusal and that every byte the user had is still there (tests/test_ownership.py: `tree`).
Every refusal here comes before any data is read or model built, so these are cheap."""

import json
import os
import shutil

import pytest

from tests.apps.test_finetune import FIXTURES, common, run_app, tiny_model_dir  # noqa: F401
from tests.apps.test_pretrain import data, run_job  # noqa: F401
from tests.ownership_cases import home_like, legacy_model_dir, tree, write


def finetune_args(init, out, eval_file="classify_eval.tsv"):
    return ["--task=classify"] + common(
        init, out, "classify_train.tsv", eval_file, epochs=1, batch_size=4, max_seq_length=64
    )


def refused(root, args):
    """apps.finetune's one-line refusal; every byte under `root` is still there."""
    before = tree(root)
    with pytest.raises(SystemExit) as e:
        run_app(args)
    text = str(e.value.code)
    assert text.startswith("finetune: ") and "\n" not in text
    assert tree(root) == before
    return text


@pytest.mark.parametrize("symlinked", [False, True])
def test_finetune_overwrite_on_a_folder_bert_tf_never_wrote(
    tiny_model_dir,
    tmp_path,  # noqa
    symlinked,
):
    home = home_like(tmp_path / "home")
    model_dir = home
    if symlinked:
        model_dir = str(tmp_path / "link")
        os.symlink(home, model_dir)
    text = refused(tmp_path, finetune_args(tiny_model_dir, model_dir) + ["--overwrite_model_dir"])
    assert text == (
        f"finetune: --model_dir={model_dir} holds files bert-tf did not write "
        "(Documents/, checkpoints/, config.json, eval_results.json and 3 more); "
        "--overwrite_model_dir removes only what bert-tf wrote and refuses a "
        "directory holding anything else: move them or use a new --model_dir"
    )


def test_pretrain_overwrite_on_a_folder_bert_tf_never_wrote(data, tmp_path):  # noqa: F811
    from bert_tf.errors import BertTfError

    home = home_like(tmp_path / "home")
    before = tree(tmp_path)
    with pytest.raises(BertTfError, match=r"holds files bert-tf did not write \(Documents/"):
        run_job(data, home, steps=2, overwrite_model_dir=True)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("kind", ["bert_tf", "hf"])
def test_init_checkpoint_as_model_dir_with_overwrite(tiny_model_dir, tmp_path, kind):  # noqa
    init = str(tmp_path / "pretrained")
    if kind == "bert_tf":
        shutil.copytree(tiny_model_dir, init)
    else:  # a Hugging Face dir: only its config is read before the refusal
        write(
            os.path.join(init, "config.json"),
            json.dumps(
                {
                    "model_type": "bert",
                    "vocab_size": 99,
                    "hidden_size": 32,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 4,
                    "intermediate_size": 64,
                    "max_position_embeddings": 64,
                }
            ),
        )
        write(os.path.join(init, "model.safetensors"), "weights")
        shutil.copy(os.path.join(tiny_model_dir, "vocab.txt"), init)
    text = refused(tmp_path, finetune_args(init, init) + ["--overwrite_model_dir"])
    assert text == (
        f"finetune: --model_dir={init} is --init_checkpoint={init}; write to a "
        "directory apart from what the run reads"
    )


def test_pretrain_init_checkpoint_as_model_dir(data, tiny_model_dir, tmp_path):  # noqa: F811
    from bert_tf.errors import BertTfError

    init = str(tmp_path / "pretrained")
    shutil.copytree(tiny_model_dir, init)
    before = tree(tmp_path)
    with pytest.raises(BertTfError, match=r" is --init_checkpoint="):
        run_job(data, init, steps=2, init_checkpoint=init, overwrite_model_dir=True)
    assert tree(tmp_path) == before


def test_user_vocab_and_results_without_config_are_not_replaced(
    tiny_model_dir,  # noqa
    tmp_path,
):
    model_dir = str(tmp_path / "run")
    write(os.path.join(model_dir, "vocab.txt"), "my own vocab\n")
    write(os.path.join(model_dir, "eval_results.json"), '{"accuracy": 0.93}\n')
    text = refused(tmp_path, finetune_args(tiny_model_dir, model_dir))
    assert text == (
        f"finetune: --model_dir={model_dir} holds eval_results.json, vocab.txt, "
        "which bert-tf did not write and this run would replace; use an empty or "
        "new --model_dir"
    )


def test_symlinked_logs_with_overwrite_is_one_line_and_removes_nothing(
    tiny_model_dir,  # noqa
    tmp_path,
):
    model_dir = legacy_model_dir(tmp_path / "run")
    shutil.rmtree(os.path.join(model_dir, "logs"))
    write(str(tmp_path / "elsewhere" / "events.out"), "the user's other logs")
    os.symlink(tmp_path / "elsewhere", os.path.join(model_dir, "logs"))
    text = refused(tmp_path, finetune_args(tiny_model_dir, model_dir) + ["--overwrite_model_dir"])
    assert text == (
        f"finetune: --model_dir={model_dir}: logs/ is a symbolic link; bert-tf "
        "writes and removes only real files and folders it made (point "
        "--model_dir at the real directory)"
    )


def test_eval_file_named_like_the_predictions_is_not_overwritten(
    tiny_model_dir,  # noqa
    tmp_path,
):
    model_dir = str(tmp_path / "run")
    eval_file = os.path.join(model_dir, "predictions.jsonl")
    with open(os.path.join(FIXTURES, "classify_eval.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    write(eval_file, "".join(json.dumps({"sentence": s, "label": y}) + "\n" for s, y in rows))
    text = refused(tmp_path, finetune_args(tiny_model_dir, model_dir, eval_file=eval_file))
    assert "predictions.jsonl" in text and "bert-tf did not write" in text


@pytest.mark.parametrize("target", ["model.weights.h5", "notes.txt"])
def test_tflite_output_never_replaces_a_file_it_did_not_write(
    tiny_model_dir,
    tmp_path,  # noqa
    target,
):
    from bert_tf import BertConfig
    from bert_tf.model_dir import ModelDir
    from export.tflite import TFLiteExportError, export_tflite

    model_dir = str(tmp_path / "cls")
    d = ModelDir(model_dir)
    d.copy_vocab(os.path.join(tiny_model_dir, "vocab.txt"))
    d.write_config(
        BertConfig.preset("tiny", vocab_size=99),
        {"vocab_file": "vocab.txt", "lower_case": True, "seq_length": 16},
        {"type": "classify", "label_names": ["a", "b"]},
    )
    write(os.path.join(model_dir, target), "precious bytes")
    before = tree(tmp_path)
    output = os.path.join(model_dir, target)
    for overwrite in (False, True):
        with pytest.raises(TFLiteExportError) as e:
            export_tflite(model_dir, output, overwrite=overwrite)
        whose = (
            "it is a bert-tf model dir's own file"
            if target == "model.weights.h5"
            else "bert-tf did not write it"
        )
        assert str(e.value) == (
            f"--output: {output} exists and {whose}; it is never replaced: choose another path"
        )
    assert tree(tmp_path) == before


def test_convert_never_replaces_its_input_or_a_users_dir(tiny_model_dir, tmp_path):  # noqa
    from bert_tf.checkpoints.convert import convert
    from bert_tf.errors import BertTfError

    src = str(tmp_path / "pretrained")
    shutil.copytree(tiny_model_dir, src)
    user = str(tmp_path / "downloads")
    write(os.path.join(user, "config.json"), "{}")
    write(os.path.join(user, "model.safetensors"), "the only copy")
    before = tree(tmp_path)
    with pytest.raises(BertTfError, match=r"--output=.* contains --input="):
        convert(src, str(tmp_path), "hf", overwrite=True)
    with pytest.raises(
        Exception,
        match=r"holds files bert-tf's runs and conversions did not "
        r"write \(config.json, model.safetensors\)",
    ):
        convert(src, user, "hf", overwrite=True)
    assert tree(tmp_path) == before


def test_default_job_never_uses_a_data_folder_it_did_not_write(tmp_path):
    from bert_tf.recipes.pretrain_config import PretrainingJobError
    from demo_data.pretraining_default import claim_job_dirs

    write(str(tmp_path / "data" / "thesis.tex"))
    before = tree(tmp_path)
    with pytest.raises(
        PretrainingJobError,
        match=r"default job: --model_dir=.* holds data/, "
        r"which bert-tf did not write",
    ):
        claim_job_dirs(str(tmp_path))
    assert tree(tmp_path) == before
    fresh = str(tmp_path / "fresh")
    claim_job_dirs(fresh)
    assert json.load(open(os.path.join(fresh, ".bert_tf_manifest.json")))["entries"] == {
        "data": "default_job",
        "data.partial": "default_job",
        "phase1_seq64": "default_job",
    }


@pytest.mark.slow  # two short pre-training runs (~80 s on a busy 2-core machine)
def test_pretrain_overwrite_starts_over_keeping_what_is_not_a_runs(data, tmp_path):  # noqa
    from bert_tf import ownership

    model_dir = str(tmp_path / "run")
    run_job(data, model_dir, steps=2, mode="train")
    ownership.record(model_dir, {"data": "default_job", "m.tflite": "export.tflite"})
    write(os.path.join(model_dir, "data", "kjv_train.txt"), "the default job's corpus")
    write(os.path.join(model_dir, "m.tflite"), "an export")
    kept = {k: v for k, v in tree(model_dir).items() if k.split(os.sep)[0] in ("data", "m.tflite")}
    run_job(data, model_dir, steps=2, mode="train", learning_rate=2e-3, overwrite_model_dir=True)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["training"]["learning_rate"] == 2e-3
    assert kept.items() <= tree(model_dir).items()
    assert ownership.foreign_entries(model_dir) == []
