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


def _field(number, payload):
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# Small non-negative ints dominate (token ids < 2^21): cache their varints.
_SMALL = [_varint(i) for i in range(1 << 15)]


def _packed_int64(values):
    small = _SMALL
    limit = len(small)
    return b"".join(small[v] if 0 <= v < limit else _varint(v) for v in values)


def encode_example(int64_features, float_features=None):
    """Serializes {name: list[int]} int64 features and {name: list[float]} float features."""
    entries = []
    for name, values in int64_features.items():
        feature = _field(3, _field(1, _packed_int64(values)) if values else b"")
        entries.append((name, feature))
    for name, values in (float_features or {}).items():
        packed = struct.pack(f"<{len(values)}f", *values)
        feature = _field(2, _field(1, packed) if values else b"")
        entries.append((name, feature))
    entries.sort(key=lambda e: e[0].encode("utf-8"))
    features = b"".join(_field(1, _field(1, name.encode("utf-8")) + _field(2, feature))
                        for name, feature in entries)
    return _field(1, features)
