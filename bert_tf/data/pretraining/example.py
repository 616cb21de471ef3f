"""tf.train.Example encoding in plain Python, for writing pre-training records fast.

Produces exactly the bytes of `tf.train.Example(...).SerializeToString(deterministic=True)`
(features sorted by name, packed repeated fields) for int64 and float features, without
building protobuf objects and without importing TensorFlow, so data-creation workers stay
light and quick. Wire format: Example{1: Features{1: repeated map entry {1: name, 2:
Feature{2: FloatList{1: packed float} | 3: Int64List{1: packed int64}}}}}.
"""

import struct


def _varint(value):
    if value < 0:
        value += 1 << 64  # int64 negatives are 10-byte two's-complement varints
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Small non-negative ints dominate (token ids, lengths): cache their varints.
_SMALL = [_varint(i) for i in range(1 << 16)]
_LIMIT = len(_SMALL)


def _length(n):
    return _SMALL[n] if n < _LIMIT else _varint(n)


def _packed_int64(values):
    if values and min(values) >= 0 and max(values) < _LIMIT:
        return b"".join(map(_SMALL.__getitem__, values))
    return b"".join(_varint(v) for v in values)


# Tags of the length-delimited fields used (field number << 3 | wire type 2).
_TAG1, _TAG2, _TAG3 = b"\x0a", b"\x12", b"\x1a"


def encode_example(int64_features, float_features=None):
    """Serializes {name: list[int]} int64 features and {name: list[float]} float features."""
    entries = []
    for name, values in int64_features.items():
        if values:
            packed = _packed_int64(values)
            inner = _TAG1 + _length(len(packed)) + packed
        else:
            inner = b""
        entries.append((name.encode("utf-8"), _TAG3 + _length(len(inner)) + inner))
    for name, values in (float_features or {}).items():
        if values:
            packed = struct.pack(f"<{len(values)}f", *values)
            inner = _TAG1 + _length(len(packed)) + packed
        else:
            inner = b""
        entries.append((name.encode("utf-8"), _TAG2 + _length(len(inner)) + inner))
    entries.sort()
    parts = []
    for name, feature in entries:
        entry = _TAG1 + _length(len(name)) + name + _TAG2 + _length(len(feature)) + feature
        parts.append(_TAG1 + _length(len(entry)) + entry)
    features = b"".join(parts)
    return _TAG1 + _length(len(features)) + features
