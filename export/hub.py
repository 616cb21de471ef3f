"""TF Hub-style export of a pre-trained BERT: a preprocessor and an encoder SavedModel.

    python -m export.hub --model_dir=DIR --output_dir=OUT [--seq_length=128]

DIR is anything bert_tf.load_encoder accepts (bert-tf model dir, Hugging Face or Google BERT
dir). Writes
  OUT/preprocessor/  strings -> input_word_ids / input_mask / input_type_ids (int32 [B, T]):
      serving_default(text string [B])    single segment, T = seq_length
      .tokenize(text string [B])          -> int32 RaggedTensor [B, (words), (pieces)]
      .bert_pack_inputs([seg, ...], seq_length=T) for 1 or 2 tokenized segments (ragged
          [B, (words), (pieces)] or [B, (pieces)]), T in --pack_seq_lengths
      .vocab_file (asset), .do_lower_case (variable), .seq_length
  OUT/encoder/       dict of the three int32 [B, T] tensors ->
      __call__(inputs)  {"pooled_output" [B, H], "sequence_output" [B, T, H],
                         "encoder_outputs": list of L [B, T, H]}
      serving_default   the same, with "encoder_outputs" stacked as [L, B, T, H]
as TF Hub's BERT preprocessors/encoders do: hub.KerasLayer(OUT/preprocessor) and
hub.KerasLayer(OUT/encoder) (or tf.saved_model.load) chain them. Both need only tensorflow +
tensorflow_text to load. Existing output subdirectories are never overwritten.
"""

import os
import shutil
import sys
import tempfile

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """Defines this command's flags (once); called by main, not at import, so the
    library functions here can be imported next to other apps."""
    if "model_dir" in FLAGS:
        return
    flags.DEFINE_string("model_dir", None, "Pre-trained model: a bert-tf model dir, a Hugging Face "
                        "BERT dir or a Google BERT dir.")
    flags.DEFINE_string("output_dir", None, "Writes OUTPUT_DIR/preprocessor and "
                        "OUTPUT_DIR/encoder (both must not exist yet).")
    flags.DEFINE_integer("seq_length", None, "Packed length of the preprocessor's default "
                         "signature (default: the model dir's, else 128).")
    flags.DEFINE_list("pack_seq_lengths", ["128"], "Extra seq_length values traced for "
                      ".bert_pack_inputs (the default --seq_length is always included).")

_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def build_preprocessor_module(model_dir, seq_length=None, pack_seq_lengths=(128,)):
    import tensorflow as tf
    from bert_tf.text.packer import pack_inputs
    from bert_tf.text.preprocessor import DEFAULT_SEQ_LENGTH, find_vocab
    from bert_tf.text.tokenizer import BertTokenizer

    vocab_file, lower_case, dir_seq = find_vocab(model_dir)
    seq_length = int(seq_length or dir_seq or DEFAULT_SEQ_LENGTH)
    tokenizer = BertTokenizer(vocab_file=vocab_file, lower_case=lower_case)

    class Preprocessor(tf.Module):
        pass

    module = Preprocessor()
    module.tokenizer = tokenizer
    module.vocab_file = tf.saved_model.Asset(vocab_file)
    module.do_lower_case = tf.Variable(tokenizer.lower_case, trainable=False,
                                       name="do_lower_case")
    module.seq_length = tf.Variable(seq_length, trainable=False, name="seq_length")
    ids = {"cls": tokenizer.cls_id, "sep": tokenizer.sep_id, "pad": tokenizer.pad_id}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(text):
        return tokenizer.tokenize_words(text)                       # [B, (words), (pieces)]

    @tf.function
    def bert_pack_inputs(segments, seq_length=seq_length):
        return pack_inputs(list(segments), seq_length, ids["cls"], ids["sep"], ids["pad"])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(text):
        return pack_inputs([tokenizer.tokenize(text)], seq_length, ids["cls"], ids["sep"],
                           ids["pad"])

    # Trace bert_pack_inputs for 1 and 2 segments of either ragged form, at each length.
    lengths = sorted({seq_length, *(int(n) for n in pack_seq_lengths)})
    for n_segments in (1, 2):
        for ragged_rank in (1, 2):
            spec = tf.RaggedTensorSpec([None] + [None] * ragged_rank, tf.int32,
                                       ragged_rank=ragged_rank)
            for length in lengths:
                bert_pack_inputs.get_concrete_function([spec] * n_segments, length)
    module.tokenize = tokenize
    module.bert_pack_inputs = bert_pack_inputs
    module.__call__ = serving_default
    return module, {"serving_default": serving_default}


def build_encoder_module(model_dir, encoder=None):
    import tensorflow as tf
    from bert_tf.checkpoints.loader import load_encoder
    encoder = encoder if encoder is not None else load_encoder(model_dir)

    class Encoder(tf.Module):
        pass

    module = Encoder()
    module.encoder = encoder
    specs = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in _INPUTS}

    @tf.function(input_signature=[specs])
    def call(inputs):
        out = encoder(inputs, training=False)
        return {"pooled_output": out["pooled_output"],
                "sequence_output": out["sequence_output"],
                "encoder_outputs": list(out["encoder_outputs"])}

    @tf.function(input_signature=[specs])
    def serving_default(inputs):
        out = call(inputs)
        return {"pooled_output": out["pooled_output"],
                "sequence_output": out["sequence_output"],
                "encoder_outputs": tf.stack(out["encoder_outputs"], 0)}   # [L, B, T, H]

    module.__call__ = call
    return module, {"serving_default": serving_default}


def _save_new(module, signatures, final):
    import tensorflow as tf
    if os.path.exists(final):
        raise FileExistsError(f"{final}: already exists (never overwritten)")
    parent = os.path.dirname(os.path.abspath(final))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(final) + "-")
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def export_hub(model_dir, output_dir, seq_length=None, pack_seq_lengths=(128,), encoder=None):
    """Writes output_dir/preprocessor and output_dir/encoder; returns their paths."""
    pre_dir = os.path.join(output_dir, "preprocessor")
    enc_dir = os.path.join(output_dir, "encoder")
    for path in (pre_dir, enc_dir):
        if os.path.exists(path):
            raise FileExistsError(f"{path}: already exists (never overwritten)")
    _save_new(*build_preprocessor_module(model_dir, seq_length, pack_seq_lengths), pre_dir)
    _save_new(*build_encoder_module(model_dir, encoder), enc_dir)
    return pre_dir, enc_dir


def main(argv):
    del argv
    for name in ("model_dir", "output_dir"):
        if not getattr(FLAGS, name):
            sys.exit(f"--{name} is required")
    try:
        lengths = [int(n) for n in FLAGS.pack_seq_lengths]
        paths = export_hub(FLAGS.model_dir, FLAGS.output_dir, FLAGS.seq_length, lengths)
    except (ValueError, OSError) as e:
        sys.exit(f"export.hub: {str(e).splitlines()[0]}")
    print("\n".join(paths))


if __name__ == "__main__":
    define_flags()
    app.run(main)
