"""Reads a PyTorch `pytorch_model.bin` state dict into numpy arrays without importing torch.

Handles the zip format torch.save has written since PyTorch 1.6: `<name>/data.pkl` (a pickle
whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` calls
with storages as persistent ids `('storage', torch.FloatStorage, key, location, numel)`) plus
one raw little-endian file per storage in `<name>/data/<key>`.

The unpickler is restricted: only the handful of globals a state dict needs are resolved, so
a malicious file cannot run code (unlike a plain `pickle.load`).
"""

import collections
import pickle
import zipfile

import ml_dtypes
import numpy as np

from bert_tf.model_dir.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        dtype = _STORAGE_DTYPES[name]
        if dtype == "bfloat16":
            dtype = ml_dtypes.bfloat16
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[offset].copy()
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]
    )
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise CheckpointError(
            f"{self.path}: unsupported object {module}.{name} in the pickle "
            "(only plain tensor state dicts are read without torch)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"{self.path}: unsupported persistent id {pid!r}")
        storage_type, key = pid[1], pid[2]
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}/data/{key}")
            self.storages[key] = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))
        return self.storages[key]


def load_torch_state_dict(path):
    """{name: float32 numpy array} from a torch.save zip file (floats cast to float32)."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: not a zip-format PyTorch file (legacy torch.save "
            "formats need torch; re-save it or convert it to safetensors)"
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{path}: expected one */data.pkl in the archive, found {len(pickles)}"
            )
        prefix = pickles[0][: -len("/data.pkl")]
        with archive.open(pickles[0]) as f:
            try:
                state = _Unpickler(f, archive, prefix, path).load()
            except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
                raise CheckpointError(f"{path}: cannot read the state dict ({e})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, expected a state dict")
    out = {}
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            out[name] = (
                value.astype(np.float32)
                if value.dtype.kind == "f" or str(value.dtype) == "bfloat16"
                else value
            )
    return out
