r"""Exports a task model directory to a self-contained .tflite (tokenizer and decoding in
the graph).

    python -m export.tflite --model_dir=DIR --output=FILE.tflite \
        [--quantize={none,dynamic,float16}] [--tokenizer={exact,fast}]

Tasks (each declares its graph: Task.tflite_graph, bert_tf/tasks/<task>/tflite.py; inputs
are string [1]). The signature `serving_default` names its outputs as the SavedModel's
serving_default does:
  classify  text [, text_b] -> probabilities float32 [1, C], label string [1], label_id
            int32 [1] (label names also in FILE.labels.txt); regression: score float32 [1]
  tag       text -> entity_text / entity_type string [E], entity_start / entity_end int32 [E]
            (character offsets, end exclusive), entity_score float32 [E], num_entities [1]
  squad     question, context -> answer string [1], answer_start / answer_end int32 [1]
            (character offsets into context, -1 for no answer), score float32 [1]
  multiple_choice  context [1], choices [C] (C = the model dir's num_choices) ->
            probabilities float32 [C], choice int32 [1] (TFLiteMultipleChoice refuses
            another number of choices before invoking, in one line)

The tokenizer is the original BERT algorithm (bert_tf/serving_graph/tflite_text.py, the same
ids and offsets as the SavedModel); `--tokenizer=fast` uses tf.text's FastBertTokenizer instead
(NFKC case folding: other ids on ~0.9% of real SMS; classify only). Run it with

    interp = InterpreterWithCustomOps(model_content=open(FILE, "rb").read(),
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)
    interp.get_signature_runner()(text=np.array([b"some text"]))   # {"label": ..., ...}

(or TensorFlow's tensorflow.lite.python.interpreter.InterpreterWithCustomOps). The graph
answers ONE input (a batch of two fails in RESHAPE); `TFLiteModel` answers lists row by row.

Modules: converter.py (freeze, convert, check, write), runtime.py (TFLiteModel and friends),
tokenizer_check.py (tokenizer agreement), cli.py (the command's flags and main).
"""

from export.tflite.cli import define_flags, main
from export.tflite.converter import (
    MIN_BYTES_PER_PARAM,
    TOKENIZERS,
    WRITER,
    build_tflite_module,
    check_output,
    convert,
    export_tflite,
    output_files,
    output_names,
)
from export.tflite.errors import TFLiteBatchError, TFLiteExportError, TFLiteInputError
from export.tflite.runtime import (
    TFLiteClassifier,
    TFLiteModel,
    TFLiteMultipleChoice,
    make_interpreter,
)
from export.tflite.tokenizer_check import (
    compare_tokenizers,
    measure_tokenizer_agreement,
    tokenizer_tflite,
)

__all__ = [
    "MIN_BYTES_PER_PARAM",
    "TOKENIZERS",
    "WRITER",
    "TFLiteBatchError",
    "TFLiteClassifier",
    "TFLiteExportError",
    "TFLiteInputError",
    "TFLiteModel",
    "TFLiteMultipleChoice",
    "build_tflite_module",
    "check_output",
    "compare_tokenizers",
    "convert",
    "define_flags",
    "export_tflite",
    "main",
    "make_interpreter",
    "measure_tokenizer_agreement",
    "output_files",
    "output_names",
    "tokenizer_tflite",
]
