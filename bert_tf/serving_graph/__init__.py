"""Graph pieces of the exported signatures, used by the tasks' export declarations.

    context         ServingContext / TFLiteContext: what `Task.serving_signature(ctx)` and
                    `Task.tflite_graph(ctx)` are given (tokenize, pack, run the model, windows,
                    the request budget), implemented by export/
    text            in-graph cleaning, tokenization with offsets, byte -> character offsets
    windows         windows over long inputs with the max-context rule (SavedModel)
    tflite_text     the original BERT tokenizer in LiteRT's ops (one string)
    tflite_windows  the same windows for the batch-1 TFLite graphs (no ragged ops)

Packing is bert_tf.text.packer (the one packer). Everything here builds plain TF core / tf.text
ops, so exported graphs load with only `tensorflow` and `tensorflow_text`.
"""
