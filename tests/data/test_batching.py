import numpy as np

from bert_tf.data.batching import RaggedFeatures, bucket_lengths, make_dataset


def _features(lengths):
    ids = [list(range(1, n + 1)) for n in lengths]
    return RaggedFeatures.from_lists(
        ids, [[0] * n for n in lengths], {"label": list(range(len(lengths)))}
    )


def test_batches_pad_to_a_multiple_of_8_capped_at_the_longest_example():
    features = _features([3, 10, 19, 5])
    batches = [np.array([0, 3]), np.array([1]), np.array([2, 0])]
    got = list(make_dataset(features, batches).as_numpy_iterator())
    widths = [inputs["input_word_ids"].shape[1] for inputs, _ in got]
    assert widths == [8, 16, 19]  # 5 -> 8, 10 -> 16, 19 -> 24 capped at 19
    inputs, labels = got[0]
    assert inputs["input_word_ids"].tolist() == [[1, 2, 3, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 0, 0, 0]]
    assert inputs["input_mask"].sum(axis=1).tolist() == [3, 5]
    assert labels.tolist() == [0, 3]


def test_pad_to_multiple_of_1_pads_to_the_batch_longest():
    features = _features([3, 10, 19, 5])
    got = list(make_dataset(features, [np.array([0, 3])], pad_to_multiple_of=1).as_numpy_iterator())
    assert got[0][0]["input_word_ids"].shape == (2, 5)


def test_ragged_labels_pad_with_minus_one_to_the_same_width():
    features = RaggedFeatures.from_lists(
        [[1, 2, 3], [4] * 12],
        [[0] * 3, [0] * 12],
        {"tags": [[1, 2, 3], [5] * 12]},
        ragged_labels=("tags",),
    )
    ((inputs, tags),) = make_dataset(features, [np.array([0])]).as_numpy_iterator()
    assert inputs["input_word_ids"].shape == tags.shape == (1, 8)
    assert tags.tolist() == [[1, 2, 3, -1, -1, -1, -1, -1]]


def test_bucket_lengths_trades_padding_against_compiles():
    longest, sizes = [16, 24, 24, 32, 128], [32] * 5
    assert bucket_lengths(longest, sizes, 0).tolist() == longest  # no compile cost
    # {32, 128}: padding 16->32 (32 rows x 16) + 24->32 (64 x 8) = 1024 tokens + 2 compiles
    # beats every other subset ({16, 24, 32, 128}: 4 compiles, no padding = 4096)
    assert bucket_lengths(longest, sizes, 1024).tolist() == [32, 32, 32, 32, 128]
    assert bucket_lengths(longest, sizes, 10**9).tolist() == [128] * 5  # one shape
    # a length many rows use stays its own bucket
    assert bucket_lengths([16, 24, 128], [3200, 1, 1], 1024).tolist() == [16, 128, 128]


def test_training_batches_merge_rare_lengths():
    features = _features([3, 10, 19, 5, 7, 4])
    batches = [np.array([0, 3]), np.array([4, 5]), np.array([1]), np.array([2, 0])]
    plain = [
        x["input_word_ids"].shape[1] for x, _ in make_dataset(features, batches).as_numpy_iterator()
    ]
    assert plain == [8, 8, 16, 19]
    merged = list(make_dataset(features, batches, compile_cost_tokens=1024).as_numpy_iterator())
    assert [x["input_word_ids"].shape[1] for x, _ in merged] == [19, 19, 19, 19]
    inputs, labels = merged[0]
    assert inputs["input_mask"].sum(axis=1).tolist() == [3, 5] and labels.tolist() == [0, 3]
    assert inputs["input_word_ids"][0].tolist() == [1, 2, 3] + [0] * 16
