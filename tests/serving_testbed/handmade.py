"""Tiny hand-made SavedModels for the testbed tests (written by Keras' ExportArchive, whose
graphs run under TF Serving's session path), plus their expected outputs in numpy."""

import os

import numpy as np

KERNEL = np.array([[1.0, -1.0], [0.5, 2.0], [-3.0, 0.25], [2.0, 1.0]], np.float32)  # [4, 2]
BIAS = np.array([0.1, -0.2], np.float32)


def expected_score(texts):
    """score [B, 2] of a model written with scale 1 (scale s multiplies it by s):
    one_hot(UTF-8 length % 4) @ KERNEL + BIAS."""
    lengths = np.array([len(t.encode("utf-8")) for t in texts]) % 4
    return KERNEL[lengths] + BIAS


def write_model(path, scale=1.0):
    """Writes an ExportArchive SavedModel with three signatures:
      serving_default(text string [B]) -> score float [B, 2], upper_bytes string [B]
      pair(x float [B, 4], n int32 [B]) -> total float [B]
      lengths(text string [B]) -> length int32 [B]   (one output)
    The Dense kernel is a variable, so a wrong restore shows up as an error or wrong values."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((4,), name="x")
    dense = keras.layers.Dense(2, name="dense")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([KERNEL * scale, BIAS * scale])
    archive = keras.export.ExportArchive()
    archive.track(model)
    string = tf.TensorSpec([None], tf.string, name="text")

    def score(text):
        one_hot = tf.one_hot(tf.strings.length(text) % 4, 4)  # [B, 4]
        return {"score": model(one_hot), "upper_bytes": tf.strings.upper(text)}

    def pair(x, n):
        return {"total": tf.reduce_sum(model(x), axis=-1) + tf.cast(n, tf.float32)}

    archive.add_endpoint("serving_default", score, input_signature=[string])
    archive.add_endpoint(
        "pair",
        pair,
        input_signature=[
            tf.TensorSpec([None, 4], tf.float32, name="x"),
            tf.TensorSpec([None], tf.int32, name="n"),
        ],
    )
    archive.add_endpoint(
        "lengths", lambda text: {"length": tf.strings.length(text)}, input_signature=[string]
    )
    archive.write_out(path, verbose=False)
    return path


def write_warmup(version_dir, requests):
    """requests: list of (signature name, {input: list of values}) -> PredictionLog records."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    extra = os.path.join(version_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name="m", signature_name=signature)
            )
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
            writer.write(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                ).SerializeToString()
            )


def write_module_saved_model(path):
    """The defect of issue 10: a Keras 3 model held by a tf.Module and saved with
    tf.saved_model.save loads under tf.saved_model.load but not under the session path."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    module = tf.Module()
    module.model = model
    module.serve = tf.function(
        lambda x: {"y": module.model(x)}, input_signature=[tf.TensorSpec([None, 4], tf.float32)]
    )
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def write_slow_model(path, scale, steps=60, size=160):
    """serving_default(text string [B]) -> score float [B] = `scale`, after `steps` matmuls of
    size x size (tens of ms: a request is in flight long enough for a reload to meet it). The
    scale is a tf.Variable, so a closed or wrongly restored session shows."""
    import tensorflow as tf

    class Slow(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(float(scale))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            m = tf.fill([size, size], 1.0 / size)
            _, m = tf.while_loop(lambda i, m: i < steps, lambda i, m: (i + 1, m @ m), [0, m])
            work = tf.reduce_sum(m) * 0.0
            return {"score": tf.fill(tf.shape(text), self.scale) + work}

    module = Slow()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path
