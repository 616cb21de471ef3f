"""Saving a tf.Module that holds Keras models so that TF Serving's C++ loader restores it.

A Keras 3 variable is a wrapper around a tf.Variable. Saved as a trackable, the wrapper is
written as a NEW variable (`Variable_N`), which is what the checkpoint and the saver's restore
op fill; the traced functions read the wrapped tf.Variable, which the checkpoint never
names. tf.saved_model.load happens to re-link them, but TF Serving's C++ LoadSavedModel
(restore op + init op + Session::Run) leaves the functions' variables unset ("Could not find
variable ..."). So exports hold Keras models untracked and track the tf.Variables themselves,
as keras.export.ExportArchive does; save_module refuses an object graph with a Keras variable.
"""

import keras
import tensorflow as tf

from bert_tf.errors import BertTfError


class ExportError(BertTfError, ValueError):
    """Bad export input, reported in one line."""


def hold_keras_layer(module, name, layer):
    """Sets `module.<name> = layer` without tracking it (so none of its Keras variables reach
    the SavedModel); returns the layer's tf.Variables, which the caller must track."""

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def set_untracked(obj, value):
        setattr(obj, name, value)

    set_untracked(module, layer)
    return tf_variables(layer.variables)


def tf_variables(variables):
    """Keras variables -> the tf.Variables they wrap (tf.Variables pass through)."""
    return [getattr(v, "value", v) if _is_keras_variable(v) else v for v in variables]


def _is_keras_variable(obj):
    return isinstance(obj, keras.Variable)


def save_module(module, path, signatures):
    """tf.saved_model.save, after checking no Keras variable is in the object graph (see
    above): every function variable then has its own checkpoint entry and restore op."""
    wrapped = [t for t in tf.train.TrackableView(module).descendants() if _is_keras_variable(t)]
    if wrapped:
        raise ExportError(
            f"{type(module).__name__}: Keras variable {wrapped[0].path!r} is "
            f"tracked; TF Serving could not restore it (hold Keras models with "
            f"hold_keras_layer)"
        )
    tf.saved_model.save(module, path, signatures=signatures)
