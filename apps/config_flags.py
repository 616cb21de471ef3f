"""absl flags generated from a recipe's config dataclass, and the config built back from them.

    define_flags(FinetuneConfig)              # one flag per field: name, type, default, help
    config = config_from_flags(FinetuneConfig)

The flag type follows the field's annotation (Optional unwrapped; for a union such as
`str | list[str] | None` the first type): bool -> DEFINE_bool (--x / --nox), int, float,
str, list -> DEFINE_list (comma-separated); a field with `choices` is DEFINE_enum. A required
field (no default) gets a flag with default None. Fields made with `setting(flag=False)` get
no flag. The help text is the field's (bert_tf/settings/).

A config class with `flag_groups()` ({group: settings class}; FinetuneConfig: every registered
task's settings) also gets one flag per field of every group (absl defines all flags before it
parses), its help prefixed by the groups that declare it ("squad: ..."). Only the group flags
given on the command line reach the config, flat (`FinetuneConfig(..., n_best_size=10)`), which
refuses those of another group in one line ("--n_best_size is a squad setting; --task=classify").
"""

import dataclasses
import types
import typing

from absl import flags

from bert_tf.settings import choices_of, field_default, flag_name

FLAGS = flags.FLAGS
# The flags belong to the app that calls define_flags (its --help lists them), not to this
# helper module: absl's own mechanism for modules that wrap DEFINE_*.
flags.disclaim_key_flags()

_DEFINE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
    list: flags.DEFINE_list,
}


def flag_fields(config_class):
    """The fields of `config_class` that are flags."""
    return [f for f in dataclasses.fields(config_class) if f.metadata.get("flag", True)]


def _flag_type(annotation):
    """int | None -> int; list[str] | None -> list; str | list[str] | None -> str."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_origin(annotation) or annotation


def _define(name, kind, default, choices, help_text, flag_values):
    if choices:
        flags.DEFINE_enum(name, default, list(choices), help_text, flag_values=flag_values)
    else:
        _DEFINE[kind](name, default, help_text, flag_values=flag_values)


def _declaration(settings_class, field, hints):
    """(flag kind, choices) of a field; TypeError for an annotation no flag type fits."""
    kind = _flag_type(hints[field.name])
    choices = choices_of(field.metadata)
    if not choices and kind not in _DEFINE:
        raise TypeError(
            f"{settings_class.__name__}.{field.name}: no flag type for {hints[field.name]}"
        )
    return kind, choices


def define_flags(config_class, flag_values=FLAGS):
    """Defines one absl flag per flag field of `config_class` and of its flag groups;
    returns their names."""
    hints = typing.get_type_hints(config_class)
    names = []
    for field in flag_fields(config_class):
        kind, choices = _declaration(config_class, field, hints)
        _define(
            flag_name(field),
            kind,
            field_default(field),
            choices,
            field.metadata.get("help") or field.name,
            flag_values,
        )
        names.append(flag_name(field))
    for name, owners in group_flags(config_class).items():
        if name in names:
            raise TypeError(
                f"{owners[0][1].__name__}.{name}: also a {config_class.__name__} setting"
            )
        _define_group_flag(name, owners, flag_values)
        names.append(name)
    return names


def group_flags(config_class):
    """{flag name: [(group, settings class, field)]} of the flag groups of `config_class`."""
    groups = getattr(config_class, "flag_groups", None)
    out = {}
    for group, settings_class in (groups() if groups else {}).items():
        for field in flag_fields(settings_class):
            out.setdefault(field.name, []).append((group, settings_class, field))
    return out


def _define_group_flag(name, owners, flag_values):
    """One flag for the field `name` of every group that declares it: the same type and
    choices; the default where they agree (else None: each group's own default applies);
    the help of each group, prefixed by the groups ("classify, tag: ...")."""
    declared = {_declaration(c, f, typing.get_type_hints(c)) for _, c, f in owners}
    if len(declared) > 1:
        raise TypeError(
            f"--{name}: declared with different types or choices by "
            f"{', '.join(g for g, _, _ in owners)}"
        )
    ((kind, choices),) = declared
    defaults = [field_default(f) for _, _, f in owners]
    default = defaults[0] if all(d == defaults[0] for d in defaults) else None
    helps = {}
    for group, _, field in owners:
        helps.setdefault(field.metadata.get("help") or name, []).append(group)
    help_text = " ".join(f"{', '.join(groups)}: {text}" for text, groups in helps.items())
    _define(name, kind, default, choices, help_text, flag_values)


def flag_values_of(config_class, flag_values=FLAGS, only_present=False):
    """{field: parsed flag value} (only the flags given on the command line with
    `only_present`)."""
    return {
        f.name: flag_values[flag_name(f)].value
        for f in flag_fields(config_class)
        if not only_present or flag_values[flag_name(f)].present
    }


def config_from_flags(config_class, flag_values=FLAGS, **extra):
    """`config_class` from the parsed flags (plus `extra` non-flag fields): every flag of
    its own fields, and the flags of its groups that were set (given on the command line or
    assigned), flat."""
    values = flag_values_of(config_class, flag_values)
    values.update(
        {
            name: flag_values[name].value
            for name in group_flags(config_class)
            if not flag_values[name].using_default_value
        }
    )
    return config_class(**values, **extra)
