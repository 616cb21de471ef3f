"""Test tooling: a stand-in for `tensorflow_model_server` (NOT the real server).

TF Serving itself cannot be installed on the project's CI machines (no binary in PyPI/Debian,
no Docker), so the client tests run against this testbed, which copies what TF Serving does that
matters for our exports: the C++ loader's session path (restore op + init op, `Session::Run` of
the signature's tensor names), numeric version directories (highest complete one wins), warm-up
replay at load, gRPC PredictionService (Predict, GetModelMetadata) and the REST JSON API.

    python -m serving_testbed.model_server --model_base_path=BASE/NAME --model_name=NAME \
        --port=8500 --rest_api_port=8501

Also here: `capi.py` loads a SavedModel through TensorFlow's C API (`TF_LoadSessionFromSavedModel`
+ `TF_SessionRun`, the C++ loader TF Serving uses) via ctypes, and `hub_tutorial.py` runs the
code of TF's BERT tutorials (tensorflow_hub + tf-keras) on a Hub-style export; both in fresh
processes that import no project code.

It is not library code (nothing in bert_tf/, export/ or apps/ imports it) and not a production
server: no batching, no model config files, one model per process.
"""
