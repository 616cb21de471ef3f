"""The BERT weight initializer: truncated normal with stddev `initializer_range`."""

import keras


def bert_initializer(initializer_range=0.02):
    return keras.initializers.TruncatedNormal(stddev=initializer_range)
