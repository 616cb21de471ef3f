"""Running an exported .tflite with LiteRT (tf.text's TFLite kernels registered): TFLiteModel
answers by output name, row by row; TFLiteClassifier and TFLiteMultipleChoice wrap the
classify and multiple-choice signatures."""

import numpy as np
from ai_edge_litert.interpreter import InterpreterWithCustomOps
from tensorflow_text.core.pybinds import tflite_registrar

from export.tflite.errors import TFLiteBatchError, TFLiteExportError, TFLiteInputError


def make_interpreter(model_content):
    return InterpreterWithCustomOps(
        model_content=model_content, custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS
    )


def _read_names(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


class TFLiteModel:
    """Runs an exported .tflite: `model(text=...)` (or question=, context=, text_b=) with a
    string -> dict of numpy outputs keyed by the signature's output names (entity_text,
    probabilities, ...); with lists of strings -> a list of such dicts, answered row by row
    (the graph takes one row). Files exported before the signatures carried names (outputs
    output_0, output_1, ...) are mapped by their FILE.outputs.txt."""

    def __init__(self, path_or_bytes):
        if isinstance(path_or_bytes, bytes):
            content, path = path_or_bytes, None
        else:
            path = path_or_bytes
            with open(path, "rb") as f:
                content = f.read()
        self.interpreter = make_interpreter(content)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        outputs = sorted(self.runner.get_output_details())
        self.rename = {}
        if outputs and all(k.startswith("output_") for k in outputs):
            names = _read_names(path + ".outputs.txt") if path else []
            if len(names) != len(outputs):
                raise TFLiteExportError(
                    f"{path or 'model bytes'}: unnamed outputs {outputs} "
                    f"and no FILE.outputs.txt naming them: re-export it "
                    f"with python -m export.tflite"
                )
            self.rename = {f"output_{i}": name for i, name in enumerate(names)}
        self.output_names = sorted(self.rename.get(k, k) for k in outputs)

    def row(self, inputs):
        """One row (a dict of inputs): each input a string, or a list of strings (multiple
        choice's choices) -> dict of named numpy outputs."""
        out = self.runner(**{k: _encode_strings(v) for k, v in inputs.items()})
        return {self.rename.get(k, k): v for k, v in out.items()}

    def __call__(self, **inputs):
        lists = {k: v for k, v in inputs.items() if isinstance(v, (list, tuple, np.ndarray))}
        if not lists:
            return self.row(inputs)
        if len(lists) != len(inputs) or len({len(v) for v in lists.values()}) != 1:
            raise TFLiteBatchError(
                f"inputs {sorted(inputs)}: pass all as strings or all as "
                f"lists of the same length, got lengths "
                f"{ {k: len(v) for k, v in lists.items()} }"
            )
        n = len(next(iter(lists.values())))
        return [self.row({k: v[i] for k, v in inputs.items()}) for i in range(n)]


def _encode_strings(value):
    """A string -> bytes [1]; a list of strings -> bytes [n]."""
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    return np.array([v if isinstance(v, bytes) else str(v).encode("utf-8") for v in values])


class TFLiteMultipleChoice(TFLiteModel):
    """A multiple-choice .tflite: `mc(context, choices)` with a string and its C choices ->
    (probabilities [C], choice); with a list of contexts and a list of choice lists -> a list
    of such pairs (row by row). C is fixed when the model is converted (the model dir's
    num_choices; the static shape of the `probabilities` output, `num_choices` here): another
    number of choices is refused before the interpreter runs (TFLiteInputError), every time
    (a graph run with another count fails in RESHAPE and leaves the interpreter resized)."""

    def __init__(self, path_or_bytes):
        super().__init__(path_or_bytes)
        key = {v: k for k, v in self.rename.items()}.get("probabilities", "probabilities")
        self.num_choices = int(self.runner.get_output_details()[key]["shape"][-1])

    def row(self, inputs):
        choices = inputs["choices"]
        n = 1 if isinstance(choices, (str, bytes)) else len(choices)
        if n != self.num_choices:
            raise TFLiteInputError(
                f"choices: expected {self.num_choices} choices (the number this model was "
                f"converted with, its model dir's num_choices), got {n}"
            )
        return super().row(inputs)

    def __call__(self, context, choices):  # noqa: D102 (the multiple-choice inputs)
        if isinstance(context, (str, bytes)):
            out = self.row({"context": context, "choices": list(choices)})
            return out["probabilities"], int(out["choice"][0])
        if len(context) != len(choices):
            raise TFLiteBatchError(
                f"{len(context)} contexts but {len(choices)} choice lists: "
                f"expected one choice list per context"
            )
        return [self(c, ch) for c, ch in zip(context, choices)]


class TFLiteClassifier(TFLiteModel):
    """A classifier .tflite: `clf(text[, text_b])` -> (probabilities [C], label_id)."""

    def __call__(self, text, text_b=None):  # noqa: D102 (one row, the classify inputs)
        inputs = {"text": text} if text_b is None else {"text": text, "text_b": text_b}
        out = super().__call__(**inputs)
        if isinstance(out, list):
            return [(o["probabilities"][0], int(o["label_id"][0])) for o in out]
        return out["probabilities"][0], int(out["label_id"][0])
