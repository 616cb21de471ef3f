"""How often a TFLite tokenizer (run by LiteRT) gives the ids of the original-BERT tokenizer
(the SavedModel export's): a .tflite of the tokenizer alone, and the comparison."""

import numpy as np
import tensorflow as tf

from bert_tf.serving_graph.tflite_text import TFLiteBertTokenizer, fast_bert_tokenize
from bert_tf.text.tokenizer import BertTokenizer
from export.tflite.runtime import make_interpreter


def tokenizer_tflite(vocab, lower_case, exact=True):
    """A .tflite (bytes) of the tokenizer alone: serving_default(text [1]) -> `ids` [P] (and
    offsets for the exact tokenizer). For parity checks and latency measurements."""
    if exact:
        tok = TFLiteBertTokenizer(vocab, lower_case)
        fn = tok.tokenize_with_offsets
    else:
        fast = fast_bert_tokenize(vocab, lower_case)
        fn = lambda text: {"ids": fast(text)}  # noqa: E731

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serving_default(text):
        return fn(text)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serving_default.get_concrete_function()], tf.Module()
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    return converter.convert()


def compare_tokenizers(vocab, lower_case, texts, tokenizer="fast"):
    """Per text: are the WordPiece ids of a TFLite tokenizer (run by the LiteRT interpreter)
    the same as the original-BERT tokenizer's (the SavedModel export's)? -> (bool array,
    [(text, tflite_tokens, bert_tokens)] for the differing texts)."""
    runner = make_interpreter(
        tokenizer_tflite(vocab, lower_case, tokenizer == "exact")
    ).get_signature_runner("serving_default")
    exact = BertTokenizer(vocab=vocab, lower_case=lower_case)
    same, diffs = [], []
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        want = exact.tokenize(tf.constant(chunk)).to_list()
        for text, y in zip(chunk, want):
            x = runner(text=np.array([text.encode("utf-8")]))["ids"].tolist()
            same.append(x == y)
            if x != y:
                diffs.append((text, [vocab[i] for i in x], [vocab[i] for i in y]))
    return np.array(same, bool), diffs


def measure_tokenizer_agreement(vocab, lower_case, texts, tokenizer="fast"):
    """(fraction of texts with identical ids, up to 10 differing examples) - see
    compare_tokenizers."""
    same, diffs = compare_tokenizers(vocab, lower_case, texts, tokenizer)
    return float(same.mean()) if len(same) else 1.0, diffs[:10]
