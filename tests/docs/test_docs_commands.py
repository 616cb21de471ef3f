"""Every command and code block of README.md and docs/*.md is checked, so a stale one fails CI:
each `python -m apps.X` / `python -m export.X` / `bert-tf-*` command (fenced shell blocks and
inline code) uses only flags that app defines (and enum values it accepts), and every Python
block runs (in one child process, next to tiny model dirs named as the docs name them:
runs/pretrain_default, runs/sst2, sst2.tflite). Block directives: tests/docs/docs_blocks.py."""

import json
import os
import subprocess
import sys

import pytest

from tests.docs import docs_blocks
from tests.docs.docs_blocks import ROOT

ALL_BLOCKS = [b for path in docs_blocks.DOC_FILES for b in docs_blocks.blocks(path)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "python" and not b.skipped]


def _commands():
    out = []
    for b in ALL_BLOCKS:
        if b.lang in docs_blocks.SHELL_LANGS and not b.skipped:
            out += docs_blocks.shell_commands(b)
    for path in docs_blocks.DOC_FILES:
        out += docs_blocks.inline_commands(path)
    return [
        (where, module, args)
        for where, line in out
        for module, args in docs_blocks.invocations(line)
    ]


def test_every_documented_command_uses_flags_its_app_defines():
    commands = _commands()
    modules = {m for _, m, _ in commands}
    assert {
        "apps.pretrain",
        "apps.finetune",
        "export.saved_model",
        "export.tflite",
        "apps.predict",
        "export.verify",
    } <= modules, sorted(modules)
    known = docs_blocks.collect_flags(modules)
    problems = [
        f"python -m {module}: cannot import: {known[module]['error']}"
        for module in sorted(modules)
        if "error" in known[module]
    ]
    for where, module, args in commands:
        if "flags" in known[module]:
            problems += [
                f"{where}: python -m {module}: {p}"
                for p in docs_blocks.flag_problems(args, known[module]["flags"])
            ]
    assert not problems, "\n".join(problems)


def test_flag_check_catches_a_stale_flag():
    """The checker itself: an unknown flag, a bad enum value and --noX of a non-bool are
    problems; --noX of a bool, placeholders and known flags are not."""
    known = {
        "task": {"bool": False, "enum": ["classify", "tag"]},
        "warmup": {"bool": True, "enum": []},
        "model_dir": {"bool": False, "enum": []},
    }
    line = (
        "python -m apps.finetune --task=clasify --nowarmup --model_dir=DIR --eval_file=x "
        "&& bert-tf-export-tflite --task=TASK --nomodel_dir  # --comment_flag"
    )
    got = [(m, docs_blocks.flag_problems(a, known)) for m, a in docs_blocks.invocations(line)]
    assert got == [
        (
            "apps.finetune",
            ["--task=clasify: expected one of ['classify', 'tag']", "unknown flag --eval_file"],
        ),
        ("export.tflite", ["unknown flag --nomodel_dir"]),
    ]


def test_every_skip_says_why_and_every_fence_has_a_language():
    for b in ALL_BLOCKS:
        assert b.lang, f"{b.where}: a code fence without a language"
        if b.skipped:
            assert "(" in b.directive and ")" in b.directive, f"{b.where}: skip needs (reason)"
        assert not b.directive or b.directive.split()[0] in ("skip", "slow", "stub"), b.where


_RUNNER = r"""
import importlib, json, os, sys, traceback
work, blocks_file, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
from tests.conftest import TINY_VOCAB       # started in the checkout's root, which has tests/
from tests.export.tiny_dirs import make_task_dir
os.chdir(work)                              # the blocks' relative paths live in the work dir
from bert_tf import BertConfig
config = BertConfig.preset("tiny", vocab_size=len(TINY_VOCAB), num_layers=2, hidden_size=32,
                           num_heads=4, intermediate_size=64, max_position_embeddings=128)
make_task_dir("runs/pretrain_default", config, TINY_VOCAB, {"type": "pretraining"},
              seq_length=128)
if slow:
    from export.tflite import export_tflite
    make_task_dir("runs/sst2", config, TINY_VOCAB,
                  {"type": "classify", "label_names": ["negative", "positive"]}, seq_length=32)
    export_tflite("runs/sst2", "sst2.tflite")
results = []
for b in json.load(open(blocks_file)):
    saved = []
    def recorder(*args, **kwargs):
        return {}
    for dotted in b["stubs"]:
        module, attr = dotted.rsplit(".", 1)
        module = importlib.import_module(module)
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, recorder)
    try:
        exec(compile(b["text"], b["where"], "exec"), {"__name__": "__docs__"})
        results.append(None)
    except BaseException:
        results.append(traceback.format_exc(limit=3)[-1500:])
    for module, attr, value in saved:
        setattr(module, attr, value)
print(json.dumps(results))
"""


def _run_python_blocks(blocks, tmp_path, slow=False):
    payload = [{"where": b.where, "text": b.text, "stubs": b.stubs} for b in blocks]
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps(payload))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(work), str(blocks_file), "1" if slow else "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = [f"{b.where}:\n{r}" for b, r in zip(blocks, results) if r]
    assert not failed, "\n".join(failed)


def test_python_blocks_run(tmp_path):
    blocks = [b for b in PYTHON_BLOCKS if not b.slow]
    assert blocks
    _run_python_blocks(blocks, tmp_path)


@pytest.mark.slow
def test_slow_python_blocks_run(tmp_path):
    """The blocks that need a converted .tflite (a conversion takes ~30 s)."""
    blocks = [b for b in PYTHON_BLOCKS if b.slow]
    assert blocks
    _run_python_blocks(blocks, tmp_path, slow=True)


def test_verify_helpfull_exits_0():
    """Every command documents its flags in --helpfull; export.verify (argparse) used to
    reject it with exit status 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "export.verify", "--helpfull"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--saved_model" in proc.stdout and "--text" in proc.stdout
