"""TF Serving warm-up requests: assets.extra/tf_serving_warmup_requests.

A TFRecord file of `PredictionLog` protos (tensorflow_serving.apis.prediction_log_pb2); TF
Serving replays them when it loads the version, so the first real request does not pay for
graph initialization. One request per padded length class is enough to trace the hot paths.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from bert_tf.tasks import get_task

WARMUP_FILE = "tf_serving_warmup_requests"


def warmup_inputs(task, max_rows=None, max_bytes=None):
    """{input name: list of strings (lists of lists for multiple choice's [B, C])} requests
    for a task: the task module's `warmup_requests` (bert_tf/tasks/), those of at most
    `max_rows` model batch rows (one per text, B x C for multiple choice). They are short,
    one window each, so they fit an export's --max_request_tokens when `max_rows` is
    max_request_tokens // seq_length (a refused warm-up record would make TF Serving refuse
    the whole version); with `max_bytes`, those of at most that many bytes of text."""
    requests = get_task(task["type"]).warmup_requests(task)
    return [
        r
        for r in requests
        if (max_rows is None or _rows(r) <= max_rows)
        and (max_bytes is None or _bytes(r) <= max_bytes)
    ]


def _bytes(request):
    def size(v):
        return (
            sum(size(x) for x in v)
            if isinstance(v, (list, tuple))
            else len(v.encode("utf-8") if isinstance(v, str) else v)
        )

    return sum(size(values) for values in request.values())


def _rows(request):
    """Model batch rows of a warm-up request: the most of any input (the [B, C] choices of
    multiple choice count B x C)."""
    return max(
        sum(len(v) if isinstance(v, (list, tuple)) else 1 for v in values)
        for values in request.values()
    )


def write_warmup_requests(
    saved_model_dir,
    task,
    model_name="model",
    signature_name="serving_default",
    max_rows=None,
    max_bytes=None,
):
    extra = os.path.join(saved_model_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    path = os.path.join(extra, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for inputs in warmup_inputs(task, max_rows, max_bytes):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
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
