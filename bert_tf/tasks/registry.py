"""The task registry: a task registers itself, once, where it is defined.

    @register_task("tag")
    class TagTask(Task):
        ...

`get_task(name)` returns the class; `task_names()` the fine-tuning tasks (`apps.finetune --task`),
`task_names(include_pretraining=True)` every registered task. The task packages under
`bert_tf/tasks/` are imported on first look-up, so importing `bert_tf.tasks` stays light and a new
task needs no edit outside its own package.
"""

import importlib
import pkgutil

_TASKS: dict[str, type] = {}
_LOADED = False


class UnknownTaskError(ValueError):
    """A task name nothing registered."""


def register_task(name, *, finetuning=True):
    """Class decorator: registers `cls` under `name` (sets `cls.name`). `finetuning=False` for
    tasks `apps.finetune` does not offer (pre-training)."""

    def wrap(cls):
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(
                f"task {name!r} registered twice ({_TASKS[name].__module__}, {cls.__module__})"
            )
        cls.name = name
        cls.is_finetuning = bool(finetuning)
        _TASKS[name] = cls
        return cls

    return wrap


def _load_all():
    global _LOADED
    if _LOADED:
        return
    import bert_tf.tasks as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.ispkg:
            importlib.import_module(f"{package.__name__}.{info.name}")
    _LOADED = True


def get_task(name):
    """The task class registered as `name` (UnknownTaskError naming the known ones)."""
    if name not in _TASKS:
        _load_all()
    if name not in _TASKS:
        raise UnknownTaskError(
            f"unknown task {name!r}: expected one of "
            f"{', '.join(task_names(include_pretraining=True))}"
        )
    return _TASKS[name]


def task_names(include_pretraining=False):
    """Registered task names, fine-tuning ones in registration-independent (sorted) order."""
    _load_all()
    return tuple(sorted(n for n, cls in _TASKS.items() if include_pretraining or cls.is_finetuning))
