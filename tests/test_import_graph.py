"""Dependencies run apps -> export -> bert_tf: no module of `bert_tf` imports `export`, `apps`
or absl flags (read from the source, so a lazy import inside a function counts too)."""

import ast
import pathlib

from tests.conftest import ROOT as _ROOT

ROOT = pathlib.Path(_ROOT)

FORBIDDEN = ("export", "apps", "absl")


def imported_modules(path):
    """Every module name an `import` / `from ... import` of the file names (absolute)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_bert_tf_never_imports_export_apps_or_absl():
    files = sorted((ROOT / "bert_tf").rglob("*.py"))
    assert len(files) > 50
    bad = [
        f"{f.relative_to(ROOT)}: {name}"
        for f in files
        for name in imported_modules(f)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not bad, bad


def test_the_check_sees_a_lazy_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from export.serving import module\n    import apps.x\n")
    assert imported_modules(module) == ["export.serving", "apps.x"]


def test_every_task_declares_its_exports_in_its_own_package():
    """Each fine-tuning task builds its SavedModel and TFLite graphs (export/ has no task
    table): bert_tf/tasks/<task>/serving.py and tflite.py."""
    from bert_tf.tasks import get_task, task_names
    from bert_tf.tasks.base import declares

    for name in task_names():
        cls = get_task(name)
        assert declares(cls, "serving_signature") and declares(cls, "tflite_graph"), name
        assert (ROOT / "bert_tf" / "tasks" / name / "serving.py").is_file(), name
        assert (ROOT / "bert_tf" / "tasks" / name / "tflite.py").is_file(), name
    assert not declares(get_task("pretraining"), "serving_signature")
