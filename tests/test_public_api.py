"""`import bert_tf`: dir() and help() list the whole public API, lazily loaded names included,
each with a one-line summary in the module docstring."""

import dataclasses
import inspect
import pydoc

import bert_tf


def test_dir_and_all_list_the_lazily_loaded_api():
    lazy = {
        "load_encoder",
        "load_preprocessor",
        "pretrain",
        "finetune",
        "PretrainConfig",
        "FinetuneConfig",
        "ModelDir",
        "BertTokenizer",
    }
    assert lazy <= set(bert_tf.__all__) <= set(dir(bert_tf))
    for name in bert_tf.__all__:
        assert getattr(bert_tf, name).__name__ == name


def test_docstring_table_has_one_summary_per_public_name():
    rows = {}
    for line in bert_tf.__doc__.splitlines():
        words = line.split()
        if line.startswith("    ") and not line.startswith("     ") and len(words) > 1:
            rows[words[0]] = " ".join(words[1:])
    assert sorted(rows) == sorted(bert_tf.__all__)


def test_help_lists_functions_and_the_table():
    text = pydoc.render_doc(bert_tf, renderer=pydoc.plaintext)
    functions = text.split("\nFUNCTIONS\n")[1].split("\nDATA\n")[0]
    for name in ("load_encoder(", "load_preprocessor(", "pretrain(", "finetune("):
        assert name in functions
    assert "load_encoder        a BertEncoder with weights" in text


def _unannotated(function):
    """The parameters (and 'return') of `function` that have no type hint."""
    signature = inspect.signature(function)
    missing = [
        name
        for name, p in signature.parameters.items()
        if name not in ("self", "cls") and p.annotation is inspect.Parameter.empty
    ]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_every_exported_signature_has_type_hints():
    """Functions: their signature; classes: their constructor (mypy checks the modules behind
    the public API with disallow_untyped_defs: pyproject.toml [tool.mypy])."""
    missing = {}
    for name in bert_tf.__all__:
        obj = getattr(bert_tf, name)
        if inspect.isclass(obj):
            if "__init__" not in vars(obj) and not dataclasses.is_dataclass(obj):
                continue  # (the inherited constructor, e.g. BertTfError)
            obj = obj.__init__
        if _unannotated(obj):
            missing[name] = _unannotated(obj)
    assert not missing
    assert _unannotated(lambda x: x) == ["x", "return"]  # the check itself sees a bare one
