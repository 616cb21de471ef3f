"""TF Serving warm-up requests: assets.extra/tf_serving_warmup_requests.

A TFRecord file of `PredictionLog` protos (tensorflow_serving.apis.prediction_log_pb2); TF
Serving replays them when it loads the version, so the first real request does not pay for
graph initialization. One request per padded length class is enough to trace the hot paths.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from bert_tf.tasks import task_class

WARMUP_FILE = "tf_serving_warmup_requests"

def warmup_inputs(task, max_rows=None):
    """{input name: list of strings (lists of lists for multiple choice's [B, C])} requests
    for a task: the task module's `warmup_requests` (bert_tf/tasks/), those of at most
    `max_rows` rows. They are short, one window each, so they fit an export's
    --max_windows_per_request (a refused warm-up record would make TF Serving refuse the
    whole version)."""
    requests = task_class(task["type"]).warmup_requests(task)
    return [r for r in requests
            if max_rows is None or len(next(iter(r.values()))) <= max_rows]


def write_warmup_requests(saved_model_dir, task, model_name="model",
                          signature_name="serving_default", max_rows=None):
    extra = os.path.join(saved_model_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    path = os.path.join(extra, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for inputs in warmup_inputs(task, max_rows):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir):
    """The PredictRequests of a version's warm-up file."""
    path = os.path.join(saved_model_dir, "assets.extra", WARMUP_FILE)
    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
