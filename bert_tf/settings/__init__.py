"""Settings declared once, as dataclass fields that carry their documentation and checks.

    @dataclasses.dataclass(kw_only=True)
    class SquadSettings(TaskSettings):
        n_best_size: int = setting(20, "start/end candidates per window ...", bounds="[1, inf)")

`setting(...)` is a dataclass field with its help text, `choices`, `bounds` and whether it
decides a run's result (`decides=False`: a rerun may change it). `Settings` is the base of every
settings dataclass (the recipes' `RunConfig`, each task's settings): every field is checked
against its declaration when the object is built (bert_tf/settings/checks.py) and stored
normalized; a value that does not fit is one `config_error` line naming the field as its flag.
apps/config_flags.py generates the absl flags from the same fields.
"""

import dataclasses
import functools
import typing

from bert_tf.errors import BertTfError
from bert_tf.settings.checks import checked_value, choices_of, parse_bounds


class ConfigError(BertTfError, ValueError, TypeError):
    """A setting that cannot work, found when the settings are built: one line naming the
    field (as its flag), expected vs got. Also a TypeError and a ValueError, the builtins a
    bad value raised before."""


def setting(
    default=dataclasses.MISSING,
    help="",
    choices=None,
    flag=True,
    bounds=None,
    decides=True,
    flag_name=None,
):
    """A settings field with its documentation: `help` is the flag's help text, `choices` make
    it an enum flag (a function returning them: resolved when checked / when the flag is
    defined); `flag=False` keeps it out of the generated flags (a Python-only
    setting); `bounds` ("[1, inf)", "(0, 1]") is the range a number must lie in; `decides=False`
    for a setting that does not change a run's result (paths compared by content, intervals:
    a rerun may change it); `flag_name` names the flag when it is not the field's name. The type
    is the annotation. All are checked when the settings are
    built (Settings.__post_init__). A list or dict default is copied per instance."""
    if choices and not callable(choices):
        choices = tuple(choices)
    metadata = {
        "help": help,
        "choices": choices or None,
        "flag": flag,
        "bounds": parse_bounds(bounds),
        "bounds_text": bounds,
        "decides": decides,
        "flag_name": flag_name,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def with_default(settings_class, name, default, help=None):
    """The field `name` of `settings_class` with another default (or help text): a subclass's
    own default, the choices and bounds kept in one place."""
    base = next(f for f in dataclasses.fields(settings_class) if f.name == name)
    meta = base.metadata
    return setting(
        default,
        help or meta["help"],
        meta["choices"],
        meta["flag"],
        meta["bounds_text"],
        meta["decides"],
        meta.get("flag_name"),
    )


def flag_name(field):
    """The flag of a settings field: its name unless `setting(flag_name=...)` says otherwise."""
    return field.metadata.get("flag_name") or field.name


def field_default(field):
    """The default of a dataclass field (None for a required one)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


@functools.cache
def declared(settings_class):
    """[(field, its resolved annotation, required)] of a settings class."""
    hints = typing.get_type_hints(settings_class)
    return [
        (
            f,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(settings_class)
    ]


def not_deciding(settings_class):
    """The fields of `settings_class` declared with `decides=False`."""
    return tuple(
        f.name for f in dataclasses.fields(settings_class) if not f.metadata.get("decides", True)
    )


@dataclasses.dataclass(kw_only=True)
class Settings:
    """Base of the settings dataclasses. Every field is checked when the object is built
    (type, choices, bounds; `config_error` is the error class raised) and stored normalized
    (os.PathLike -> str, numpy integers -> int, a tuple -> list)."""

    config_error: typing.ClassVar[type] = ConfigError

    def __post_init__(self):
        for field, annotation, required in declared(type(self)):
            setattr(
                self,
                field.name,
                checked_value(
                    flag_name(field),
                    getattr(self, field.name),
                    annotation,
                    field.metadata,
                    required,
                    self.config_error,
                ),
            )


__all__ = [
    "ConfigError",
    "Settings",
    "declared",
    "choices_of",
    "field_default",
    "flag_name",
    "not_deciding",
    "setting",
    "with_default",
]
