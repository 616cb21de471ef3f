"""TF Hub-style export of a pre-trained BERT: a preprocessor and an encoder SavedModel.

    python -m export.hub --model_dir=DIR --output_dir=OUT [--seq_length=128]

DIR is anything bert_tf.load_encoder accepts (bert-tf model dir, Hugging Face or Google BERT
dir). Writes
  OUT/preprocessor/  strings -> input_word_ids / input_mask / input_type_ids (int32 [B, T]):
      serving_default(text string [B])    single segment, T = seq_length
      .tokenize(text string [B])          -> int32 RaggedTensor [B, (words), (pieces)]
      .bert_pack_inputs([seg, ...], seq_length=T) for 1 or 2 tokenized segments (ragged
          [B, (words), (pieces)] or [B, (pieces)]), any T (int32 scalar; default seq_length)
      .vocab_file (asset), .do_lower_case (variable), .seq_length
  OUT/encoder/       dict of the three int32 [B, T] tensors ->
      __call__(inputs, training=None)  {"pooled_output" [B, H], "sequence_output" [B, T, H],
                         "encoder_outputs": list of L [B, T, H]} (dropout on if training)
      .variables, .trainable_variables, .regularization_losses (for fine-tuning)
      .mlm (if DIR has MLM head weights): __call__(inputs + "masked_lm_positions" [B, P])
                         -> the encoder outputs + "mlm_logits" [B, P, V]
      .serve / .serve_training  inputs -> outputs (keras.layers.TFSMLayer endpoints)
      serving_default   the same, with "encoder_outputs" stacked as [L, B, T, H]
as TF Hub's BERT preprocessors/encoders do: hub.KerasLayer(OUT/preprocessor) and
hub.KerasLayer(OUT/encoder, trainable=True) (or tf.saved_model.load) chain them. Both need only
tensorflow + tensorflow_text to load, also by TF Serving's C++ loader. Existing output
subdirectories are never overwritten.
"""

import os
import shutil
import sys

import keras
import tensorflow as tf
from absl import app, flags

from bert_tf import BertPretrainer
from bert_tf.checkpoints import names as tensor_names
from bert_tf.checkpoints.loader import load_encoder, load_pretrainer, load_task_model
from bert_tf.checkpoints.sources import detect_kind, read_source
from bert_tf.models.encoder import encoder_inputs
from bert_tf.text.packer import pack_inputs
from bert_tf.text.preprocessor import DEFAULT_SEQ_LENGTH, find_vocab
from bert_tf.text.tokenizer import BertTokenizer
from export import publish
from export.serving.saving import ExportError, hold_keras_layer, save_module, tf_variables

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string(
        "model_dir",
        None,
        "Pre-trained model: a bert-tf model dir, a Hugging Face BERT dir or a Google BERT dir.",
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Writes OUTPUT_DIR/preprocessor and OUTPUT_DIR/encoder (both must not exist yet).",
    )
    flags.DEFINE_integer(
        "seq_length",
        None,
        "Packed length of the preprocessor's default "
        "signature (default: the model dir's, else 128).",
    )


_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def build_preprocessor_module(model_dir, seq_length=None):
    """The preprocessor module (its `bert_pack_inputs` packs to any seq_length)."""
    vocab_file, lower_case, dir_seq = find_vocab(model_dir)
    seq_length = int(seq_length or dir_seq or DEFAULT_SEQ_LENGTH)
    tokenizer = BertTokenizer(vocab_file=vocab_file, lower_case=lower_case)

    class Preprocessor(tf.Module):
        pass

    module = Preprocessor()
    module.tokenizer = tokenizer
    module.vocab_file = tf.saved_model.Asset(vocab_file)
    module.do_lower_case = tf.Variable(tokenizer.lower_case, trainable=False, name="do_lower_case")
    module.seq_length = tf.Variable(seq_length, trainable=False, name="seq_length")
    ids = {"cls": tokenizer.cls_id, "sep": tokenizer.sep_id, "pad": tokenizer.pad_id}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(text):
        return tokenizer.tokenize_words(text)  # [B, (words), (pieces)]

    @tf.function
    def bert_pack_inputs(segments, seq_length=seq_length):
        return pack_inputs(list(segments), seq_length, ids["cls"], ids["sep"], ids["pad"])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(text):
        return pack_inputs(
            [tokenizer.tokenize(text)], seq_length, ids["cls"], ids["sep"], ids["pad"]
        )

    # As TF's own BERT preprocessors: bert_pack_inputs traced with a scalar int32
    # seq_length, so any length works, for 1 and 2 segments of either ragged form.
    length = tf.TensorSpec([], tf.int32, name="seq_length")
    for n_segments in (1, 2):
        for ragged_rank in (1, 2):
            spec = tf.RaggedTensorSpec(
                [None] + [None] * ragged_rank, tf.int32, ragged_rank=ragged_rank
            )
            bert_pack_inputs.get_concrete_function([spec] * n_segments, length)
    module.tokenize = tokenize
    module.bert_pack_inputs = bert_pack_inputs
    module.__call__ = serving_default
    return module, {"serving_default": serving_default}


def load_hub_models(model_dir):
    """(encoder, pretrainer or None): the pretrainer when `model_dir` has MLM head weights
    (a bert-tf pre-training dir, or an HF / Google checkpoint with the MLM tensors)."""
    if detect_kind(model_dir) == "bert_tf":
        model = load_task_model(model_dir)
        return model.encoder, model if isinstance(model, BertPretrainer) else None
    if read_source(model_dir).has_group(tensor_names.MLM):
        model = load_pretrainer(model_dir)
        return model.encoder, model
    return load_encoder(model_dir), None


def _hub_object(layer, call_outputs, specs):
    """A TF Hub-style reusable SavedModel object for a Keras `layer`: `variables`,
    `trainable_variables`, `regularization_losses` (tf.Variables, not Keras ones: see
    export.saved_model.hold_keras_layer) and `__call__(inputs, training=None)`, traced for
    training None / False / True (dropout on), plus `serve` / `serve_training` (inputs only,
    for keras.layers.TFSMLayer's call_endpoint / call_training_endpoint)."""

    obj = tf.__internal__.tracking.AutoTrackable()
    obj.variables = hold_keras_layer(obj, "_layer", layer)
    obj.trainable_variables = tf_variables(layer.trainable_variables)
    obj.regularization_losses = []  # BERT has no weight regularizers (decay is in AdamW)

    @tf.function
    def call(inputs, training=None):
        return call_outputs(layer(inputs, training=bool(training)))

    for training in (None, False, True):
        call.get_concrete_function(specs, training)
    obj.__call__ = call
    obj.serve = tf.function(lambda inputs: call(inputs, training=False), input_signature=[specs])
    obj.serve_training = tf.function(
        lambda inputs: call(inputs, training=True), input_signature=[specs]
    )
    return obj


def _encoder_outputs(out):
    return {
        "pooled_output": out["pooled_output"],
        "sequence_output": out["sequence_output"],
        "encoder_outputs": list(out["encoder_outputs"]),
    }


def build_encoder_module(model_dir, encoder=None, pretrainer=None):
    """The encoder object (+ an `mlm` sub-object when a pretrainer with an MLM head is given
    or found in `model_dir`) and its serving signature."""
    if encoder is None and pretrainer is None:
        encoder, pretrainer = load_hub_models(model_dir)
    encoder = encoder if encoder is not None else pretrainer.encoder
    specs = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in _INPUTS}
    module = _hub_object(encoder, _encoder_outputs, specs)
    if pretrainer is not None:
        mlm_specs = dict(
            specs,
            masked_lm_positions=tf.TensorSpec([None, None], tf.int32, name="masked_lm_positions"),
        )
        mlm_model = _mlm_model(pretrainer)
        module.mlm = _hub_object(mlm_model, dict, mlm_specs)

    @tf.function(input_signature=[specs])
    def serving_default(inputs):
        out = module.__call__(inputs, training=False)
        return {
            "pooled_output": out["pooled_output"],
            "sequence_output": out["sequence_output"],
            "encoder_outputs": tf.stack(out["encoder_outputs"], 0),
        }  # [L, B, T, H]

    return module, {"serving_default": serving_default}


def _mlm_model(pretrainer):
    """Keras model: encoder inputs + masked_lm_positions [B, P] -> the encoder outputs and
    mlm_logits [B, P, V] (TF's BERT encoder export's `mlm` inputs and outputs)."""
    inputs = encoder_inputs(_INPUTS + ("masked_lm_positions",))
    enc = pretrainer.encoder({name: inputs[name] for name in _INPUTS})
    outputs = dict(
        _encoder_outputs(enc),
        mlm_logits=pretrainer.mlm_head(enc["sequence_output"], inputs["masked_lm_positions"]),
    )
    return keras.Model(inputs, outputs, name="mlm")


def _save_new(module, signatures, final):
    """Saves into a private temp dir beside `final` (see export.publish), then renames."""
    if os.path.exists(final):
        raise FileExistsError(f"{final}: already exists (never overwritten)")
    parent = os.path.dirname(os.path.abspath(final))
    publish.clean_stale_temp_dirs(parent)
    tmp = publish.temp_dir(parent)
    try:
        save_module(module, tmp, signatures)
        publish.finish(tmp)
        os.rename(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if publish.is_disk_full(e):
            raise ExportError(publish.disk_full_message(final, None)) from e
        raise
    return final


def export_hub(model_dir, output_dir, seq_length=None, encoder=None, pretrainer=None):
    """Writes output_dir/preprocessor and output_dir/encoder; returns their paths."""
    pre_dir = os.path.join(output_dir, "preprocessor")
    enc_dir = os.path.join(output_dir, "encoder")
    for path in (pre_dir, enc_dir):
        if os.path.exists(path):
            raise FileExistsError(f"{path}: already exists (never overwritten)")
    _save_new(*build_preprocessor_module(model_dir, seq_length), pre_dir)
    _save_new(*build_encoder_module(model_dir, encoder, pretrainer), enc_dir)
    return pre_dir, enc_dir


def main(argv):
    del argv
    for name in ("model_dir", "output_dir"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    try:
        paths = export_hub(FLAGS.model_dir, FLAGS.output_dir, FLAGS.seq_length)
    except (ValueError, OSError) as e:
        sys.exit(f"export.hub: {str(e).splitlines()[0]}")
    print("\n".join(paths))


if __name__ == "__main__":
    define_flags()
    app.run(main)
