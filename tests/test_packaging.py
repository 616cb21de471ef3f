"""pyproject.toml ships what the installed package reads at run time: every data file beside the
installed packages matches a package-data pattern (the embedded default corpus once lived in a
subfolder the pattern missed, so `pip install .` would have installed a job without its text),
and every console script names a callable that exists."""

import fnmatch
import importlib
import os

import tomllib

from tests.conftest import ROOT

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    PYPROJECT = tomllib.load(f)


def _installed_packages():
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return [p for p in patterns if "*" not in p]


def _glob_match(rel, pattern):
    """setuptools' package-data glob: `*` stays within one folder."""
    parts, pattern_parts = rel.split("/"), pattern.split("/")
    return len(parts) == len(pattern_parts) and all(
        fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pattern_parts)
    )


def test_every_data_file_of_an_installed_package_is_package_data():
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    missing = []
    for package in _installed_packages():
        top = os.path.join(ROOT, *package.split("."))
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith((".py", ".pyc", ".md")):  # code, and docs for the reader
                    continue
                rel = os.path.relpath(os.path.join(folder, name), top).replace(os.sep, "/")
                if not any(_glob_match(rel, p) for p in package_data.get(package, ())):
                    missing.append(f"{package}: {rel}")
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_every_subpackage_of_a_shipped_package_is_shipped():
    """setuptools' find includes a subpackage only when a pattern names it (`export` does not
    bring `export.serving`): a folder moved into a subpackage must not drop out of the wheel."""
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    missing = []
    for package in _installed_packages():
        top = os.path.join(ROOT, *package.split("."))
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" not in files:
                continue
            rel = os.path.relpath(folder, top)
            name = package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"
            if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                missing.append(name)
    assert not missing, f"not matched by [tool.setuptools.packages.find] include: {missing}"


def test_console_scripts_name_existing_mains():
    scripts = PYPROJECT["project"]["scripts"]
    assert "bert-tf-pretrain" in scripts and "bert-tf-finetune" in scripts
    for name, target in scripts.items():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
