"""The config a recipe is called with: `finetune(config)` needs a FinetuneConfig, one line
otherwise. (Each field's own checks: bert_tf/settings/checks.py.)"""

from bert_tf.settings.checks import describe_value


def require_instance(value, config_class, call):
    """`call(config)` needs a `config_class`: else its config error, one line."""
    if not isinstance(value, config_class):
        raise config_class.config_error(
            f"{call}(config): expected a {config_class.__name__}, got "
            f"{describe_value(value)}; build one with bert_tf.{config_class.__name__}(**values)"
        )
