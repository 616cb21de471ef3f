"""Base for models that put a head on a BertEncoder: serializes the encoder with them."""

import keras


class EncoderTask(keras.Model):
    """A functional model built around `self.encoder`; subclasses list their own config keys."""

    config_keys = ()

    def get_config(self):
        config = {"encoder": keras.saving.serialize_keras_object(self.encoder),
                  "name": self.name, "trainable": self.trainable}
        config.update({key: getattr(self, key) for key in self.config_keys})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


