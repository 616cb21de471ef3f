"""tensorflow.serving.PredictionService over real gRPC: Predict and GetModelMetadata.

Predict: model_spec (name, optional version, signature_name; "" = serving_default), inputs as
TensorProtos whose aliases and dtypes must be exactly the signature's, optional output_filter.
GetModelMetadata: metadata_field ["signature_def"] -> a SignatureDefMap packed in an Any, as
TF Serving answers. Failures are gRPC statuses (NOT_FOUND, INVALID_ARGUMENT,
FAILED_PRECONDITION, ...) with TF Serving's messages; the server keeps running.
"""

from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from serving_testbed.servable import ServingError


def _abort(context, error):
    context.abort(getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN), str(error))


def _version(spec):
    return spec.version.value if spec.HasField("version") else None


def predict(store, request):
    """PredictRequest -> PredictResponse (raises ServingError)."""
    spec = request.model_spec
    try:
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    except (TypeError, ValueError) as e:
        raise ServingError("INVALID_ARGUMENT", f"input tensor: {e}") from None
    with store.use(spec.name, _version(spec)) as servable:  # open until answered
        name, outputs = servable.run(spec.signature_name, inputs, tuple(request.output_filter))
    response = predict_pb2.PredictResponse()
    response.model_spec.name = spec.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = name
    for alias, value in outputs.items():
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return response


def model_metadata(store, request):
    """GetModelMetadataRequest -> GetModelMetadataResponse (raises ServingError)."""
    fields = list(request.metadata_field)
    if fields != ["signature_def"]:
        raise ServingError(
            "INVALID_ARGUMENT", f'Metadata field(s) not supported: {fields} (only "signature_def")'
        )
    servable = store.servable(request.model_spec.name, _version(request.model_spec))
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_def.items():
        signatures.signature_def[key].CopyFrom(value)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = servable.version
    response.metadata["signature_def"].Pack(signatures)
    return response


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store):
        self.store = store

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            return predict(self.store, request)
        except ServingError as e:
            _abort(context, e)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            return model_metadata(self.store, request)
        except ServingError as e:
            _abort(context, e)


def start_grpc_server(store, port, host="127.0.0.1", workers=4):
    """Starts the service; returns (grpc.Server, bound port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(store), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound
