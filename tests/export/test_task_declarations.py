"""export/ builds a task's SavedModel signatures from the task's declaration alone: a task
registered here, in no file of export/, is served through the public ServingContext
(check_request, tokenize, pack, run_model) and gets the generic serving_encoded."""

import numpy as np
import pytest
import tensorflow as tf

from bert_tf.serving_graph.context import string_spec
from bert_tf.tasks import get_task, register_task, registry, task_names
from bert_tf.tasks.base import Task, declares
from tests.conftest import TINY_VOCAB


class _Model:
    """A stand-in task model: logits = the number of real tokens of each row."""

    variables = ()

    def __call__(self, inputs, training=False):
        return {
            "logits": tf.cast(tf.reduce_sum(inputs["input_mask"], -1, keepdims=True), tf.float32)
        }


@pytest.fixture
def count_task():
    @register_task("count_for_test")
    class CountTask(Task):
        @classmethod
        def serving_signature(cls, ctx):
            @tf.function(input_signature=[string_spec("text")])
            def serving_default(text):
                (checked,) = ctx.check_request("count", text)
                inputs = ctx.pack([ctx.tokenize(checked)[1]])
                return {"tokens": ctx.run_model(inputs)["logits"][:, 0]}

            return serving_default

        @classmethod
        def encoded_input_specs(cls):
            return {
                k: tf.TensorSpec([None, 2, None], tf.int32, name=k)
                for k in ("input_word_ids", "input_mask", "input_type_ids")
            }

    yield CountTask
    registry._TASKS.pop("count_for_test")


def test_a_new_task_is_served_from_its_declaration(count_task, tmp_path):
    from export.serving.module import ServingModule

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    assert "count_for_test" in task_names() and declares(count_task, "serving_signature")
    assert not declares(count_task, "tflite_graph")
    module = ServingModule(_Model(), {"type": "count_for_test"}, str(vocab), True, 8)
    signatures = module.signatures()
    out = signatures["serving_default"](text=tf.constant(["john lives", "", "a b c d e f g"]))
    np.testing.assert_array_equal(out["tokens"], [4, 2, 8])  # [CLS] .. [SEP], cut at 8
    encoded = signatures["serving_encoded"].input_signature[0]
    assert encoded["input_word_ids"].shape.as_list() == [None, 2, None]  # the task's specs
    small = ServingModule(_Model(), {"type": "count_for_test"}, str(vocab), True, 8)
    small.max_request_bytes = 4  # the export's budget, checked by ctx.check_request
    with pytest.raises(tf.errors.InvalidArgumentError, match="count request is 10 bytes"):
        small.signatures()["serving_default"](text=tf.constant(["john lives"]))


def test_pretraining_declares_no_export():
    from export.serving.writer import exporting_tasks

    assert not declares(get_task("pretraining"), "serving_signature")
    assert exporting_tasks("serving_signature") == list(task_names())
    assert exporting_tasks("tflite_graph") == list(task_names())
