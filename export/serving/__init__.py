"""The TF Serving SavedModel export (`python -m export.saved_model`, `python -m export.verify`).

module   ServingModule: the ServingContext a task's serving_signature is built from, plus
         serving_encoded (export builds every task from its declaration, no task table)
budget   the per-request budget (bytes, tokens) checked in the graph
saving   saving a tf.Module holding Keras models so TF Serving's C++ loader restores it
warmup   assets.extra/tf_serving_warmup_requests from the task's warmup_requests
writer   model dir -> the next numeric version BASE/NAME/<N>/, published atomically
verify   a fresh process that loads and runs an export as TF Serving would
"""
