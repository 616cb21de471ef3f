"""The commands and code blocks of README.md and docs/*.md, for tests/docs/test_docs_commands.py.

A fenced block may be preceded (blank lines allowed) by one directive comment:
    <!-- docs-test: skip (why it cannot run here) -->
    <!-- docs-test: slow -->                       run it in the slow suite only
    <!-- docs-test: stub bert_tf.pretrain ... -->  replace these callables by recorders: the
                                                   block's objects are built, the long run is not
Commands are `python -m MODULE ...` (also `venv-beam/bin/python -m ...`) and `bert-tf-NAME ...`
lines of bash/sh blocks (backslash continuations joined, comments dropped) and of inline code
spans that start with one of them; their `--flags` are checked against the module's flags.
"""

import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_FILES = ["README.md"] + sorted(
    os.path.join("docs", n) for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md")
)
SHELL_LANGS = ("bash", "sh", "shell", "console")
PACKAGES = ("apps", "export", "benchmarks", "serving_testbed", "demo_data")
# pyproject.toml [project.scripts]: bert-tf-NAME -> the module whose main it runs
ENTRY_POINTS = {"verify": "export.verify", "fetch-assets": "demo_data.assets"}
SEPARATORS = {"&&", "||", "|", ";", ">", ">>", "2>&1", "<"}
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")
_INLINE = re.compile(r"`((?:venv-beam/bin/)?python -m [^`]+|bert-tf-[a-z-]+[^`]*)`")


class Block:
    def __init__(self, path, line, lang, text, directive):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.directive = directive or ""

    @property
    def where(self):
        return f"{self.path}:{self.line}"

    @property
    def skipped(self):
        return self.directive.startswith("skip")

    @property
    def slow(self):
        return self.directive.startswith("slow")

    @property
    def stubs(self):
        d = self.directive
        return d.split()[1:] if d.startswith("stub") else []


def blocks(rel_path):
    """The fenced blocks of one markdown file -> [Block]."""
    out, directive, fence = [], None, None
    with open(os.path.join(ROOT, rel_path), encoding="utf-8") as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines, 1):
        if fence is not None:
            if line.strip() == "```":
                out.append(Block(rel_path, fence[0], fence[1], "\n".join(fence[2]), fence[3]))
                fence = None
            else:
                fence[2].append(line)
            continue
        if line.strip().startswith("```"):
            fence, directive = (n, line.strip()[3:].strip(), [], directive), None
            continue
        m = _DIRECTIVE.search(line)
        if m:
            directive = m.group(1)
        elif line.strip():
            directive = None
    assert fence is None, f"{rel_path}:{fence[0]}: unclosed code fence"
    return out


def inline_commands(rel_path):
    """Commands in inline code spans outside fenced blocks -> [(where, command)]."""
    out, in_fence = [], False
    with open(os.path.join(ROOT, rel_path), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip().startswith("```"):
                in_fence = not in_fence
            elif not in_fence:
                out += [(f"{rel_path}:{n}", m.group(1)) for m in _INLINE.finditer(line)]
    return out


def shell_commands(block):
    """A shell block -> [(where, command line)], continuation lines joined."""
    out, current, start = [], "", None
    for n, line in enumerate(block.text.splitlines(), block.line + 1):
        if start is None:
            start = n
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        out.append((f"{block.path}:{start}", current + line))
        current, start = "", None
    return out


def invocations(command):
    """A command line -> [(module, [--flag tokens])] for every project command in it."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError as e:
        raise AssertionError(f"cannot parse {command!r}: {e}") from None
    out, i = [], 0
    while i < len(tokens):
        tok, module = tokens[i], None
        if tok.endswith("python") and tokens[i + 1 : i + 2] == ["-m"] and i + 2 < len(tokens):
            module, i = tokens[i + 2], i + 3
        elif tok.startswith("bert-tf-"):
            name = tok[len("bert-tf-") :]
            module = ENTRY_POINTS.get(name) or (
                "export." + name[len("export-") :].replace("-", "_")
                if name.startswith("export-")
                else "apps." + name.replace("-", "_")
            )
            i += 1
        else:
            i += 1
            continue
        args = []
        while i < len(tokens) and tokens[i] not in SEPARATORS:
            args.append(tokens[i])
            i += 1
        if module.split(".")[0] in PACKAGES and not module.split(".")[-1].isupper():  # NAME
            out.append((module, [a for a in args if a.startswith("--")]))
    return out


_COLLECT = r"""
import importlib, inspect, json, sys
import tensorflow
from absl import app, flags
FLAGS = flags.FLAGS
result = {}
for name in sys.argv[1:]:
    before = set(FLAGS)
    try:
        module = importlib.import_module(name)
        define = getattr(module, "define_flags", None)
        if callable(define) and not any(
                p.default is p.empty for p in inspect.signature(define).parameters.values()):
            define()
    except Exception as e:
        result[name] = {"error": f"{type(e).__name__}: {e}"}
        continue
    added = set(FLAGS) - before
    result[name] = {"flags": {
        n: {"bool": isinstance(FLAGS[n], flags.BooleanFlag),
            "enum": list(getattr(FLAGS[n].parser, "enum_values", None) or [])}
        for n in added}}
    for n in added:     # the next app may define flags of the same names
        delattr(FLAGS, n)
print(json.dumps(result))
"""


def collect_flags(modules):
    """{module: {flag: {"bool": bool, "enum": [...]}} or {"error": str}}: the absl flags an
    app defines (imported in one child process, so this process's FLAGS stay untouched); for
    a module without absl flags (argparse: export.verify, benchmarks.*) its add_argument
    calls."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _COLLECT, *sorted(modules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, info in result.items():
        if "flags" in info and not info["flags"]:
            info["flags"] = argparse_flags(name)
    return result


def argparse_flags(module):
    with open(os.path.join(ROOT, *module.split(".")) + ".py", encoding="utf-8") as f:
        names = re.findall(r"add_argument\(\s*\"--([a-z][a-z0-9_]*)\"", f.read())
    return {n: {"bool": False, "enum": []} for n in names}


def flag_problems(flag_args, known):
    """[--flag tokens] vs the app's flags -> [problem]."""
    problems = []
    for arg in flag_args:
        name, has_value, value = arg[2:].partition("=")
        spec = known.get(name)
        if spec is None and name.startswith("no") and known.get(name[2:], {}).get("bool"):
            spec = {"bool": True, "enum": []}
        if spec is None:
            problems.append(f"unknown flag --{name}")
        elif (
            spec["enum"]
            and has_value
            and value not in spec["enum"]
            and not (value.isupper() or value.startswith(("{", "$", "<")))
        ):
            problems.append(f"--{name}={value}: expected one of {spec['enum']}")
    return problems
