"""absl flags generated from a recipe's config dataclass, and the config built back from them.

    define_flags(FinetuneConfig)              # one flag per field: name, type, default, help
    config = config_from_flags(FinetuneConfig)

The flag type follows the field's annotation (Optional unwrapped; for a union such as
`str | list[str] | None` the first type): bool -> DEFINE_bool (--x / --nox), int, float,
str, list -> DEFINE_list (comma-separated); a field with `choices` is DEFINE_enum. A required
field (no default) gets a flag with default None. Fields made with `setting(flag=False)` get
no flag. The help text is the field's (bert_tf/recipes/run_config.py)."""

import dataclasses
import types
import typing

from absl import flags

from bert_tf.recipes.run_config import flag_name

FLAGS = flags.FLAGS
# The flags belong to the app that calls define_flags (its --help lists them), not to this
# helper module: absl's own mechanism for modules that wrap DEFINE_*.
flags.disclaim_key_flags()

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string, list: flags.DEFINE_list}


def flag_fields(config_class):
    """The fields of `config_class` that are flags."""
    return [f for f in dataclasses.fields(config_class) if f.metadata.get("flag", True)]


def _flag_type(annotation):
    """int | None -> int; list[str] | None -> list; str | list[str] | None -> str."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_origin(annotation) or annotation


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def define_flags(config_class, flag_values=FLAGS):
    """Defines one absl flag per flag field of `config_class`; returns their names."""
    hints = typing.get_type_hints(config_class)
    names = []
    for field in flag_fields(config_class):
        name = flag_name(field)
        help_text = field.metadata.get("help") or field.name
        choices = field.metadata.get("choices")
        if choices:
            flags.DEFINE_enum(name, _default(field), list(choices), help_text,
                              flag_values=flag_values)
        else:
            kind = _flag_type(hints[field.name])
            if kind not in _DEFINE:
                raise TypeError(f"{config_class.__name__}.{field.name}: no flag type for "
                                f"{hints[field.name]}")
            _DEFINE[kind](name, _default(field), help_text, flag_values=flag_values)
        names.append(name)
    return names


def flag_values_of(config_class, flag_values=FLAGS, only_present=False):
    """{field: parsed flag value} (only the flags given on the command line with
    `only_present`)."""
    return {f.name: flag_values[flag_name(f)].value for f in flag_fields(config_class)
            if not only_present or flag_values[flag_name(f)].present}


def config_from_flags(config_class, flag_values=FLAGS, **extra):
    """`config_class` from the parsed flags (plus `extra` non-flag fields)."""
    return config_class(**flag_values_of(config_class, flag_values), **extra)
