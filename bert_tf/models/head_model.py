"""EncoderHeadModel: the base of the Keras models that put heads on a BertEncoder (the
pre-trainer and the task models); it serializes the encoder with them.

Not registered with Keras itself: saved files name the registered subclasses
(`bert_tf>BertClassifier`, ...), so this class's name never appears in them."""

from typing import Any

import keras


class EncoderHeadModel(keras.Model):
    """A functional Keras model: `self.encoder` plus head layers; subclasses list their own
    config keys."""

    config_keys: tuple[str, ...] = ()  # the constructor arguments get_config records

    def get_config(self) -> dict[str, Any]:
        config = {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "name": self.name,
            "trainable": self.trainable,
        }
        config.update({key: getattr(self, key) for key in self.config_keys})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "EncoderHeadModel":
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
