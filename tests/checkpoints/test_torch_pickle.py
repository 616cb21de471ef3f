"""pytorch_model.bin without torch: a torch.save-format zip written by hand (the pickle refers
to torch globals through stand-in modules present only while pickling)."""

import collections
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from bert_tf import BertEncoder, load_encoder
from bert_tf.checkpoints import writers
from bert_tf.checkpoints.sources import CheckpointError
from bert_tf.checkpoints.torch_pickle import load_torch_state_dict


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


def _write_torch_zip(path, state, transpose_storage=()):
    """Writes `state` ({name: np.ndarray}) the way torch.save does (zip + data.pkl + data/N).
    Names in `transpose_storage` are stored as non-contiguous views (stride-swapped)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    float_storage = type("FloatStorage", (), {"__module__": "torch"})
    torch.FloatStorage = float_storage
    torch._utils = utils

    class Tensor:
        def __init__(self, storage, size, stride):
            self.storage, self.size, self.stride = storage, size, stride

        def __reduce__(self):
            return (
                _rebuild_tensor_v2,
                (self.storage, 0, self.size, self.stride, False, collections.OrderedDict()),
            )

    storages, tensors = [], collections.OrderedDict()
    for i, (name, array) in enumerate(state.items()):
        array = np.asarray(array, np.float32)
        if name in transpose_storage and array.ndim == 2:
            stored = np.ascontiguousarray(array.T)  # memory holds the transpose
            stride = (1, array.shape[0])
        else:
            stored = np.ascontiguousarray(array)
            stride = tuple(s // 4 for s in stored.strides)
        storage = _Storage(str(i), stored)
        storages.append(storage)
        tensors[name] = Tensor(storage, tuple(array.shape), stride)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", float_storage, obj.key, "cpu", obj.array.size)
            return None

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        buffer = io.BytesIO()
        Pickler(buffer, protocol=2).dump(tensors)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buffer.getvalue())
        z.writestr("archive/version", "3\n")
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.array.astype("<f4").tobytes())


def test_reads_tensors_including_strided_views(tmp_path):
    rng = np.random.default_rng(0)
    state = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(5,)), "c": rng.normal(size=(2, 3))}
    path = str(tmp_path / "pytorch_model.bin")
    _write_torch_zip(path, state, transpose_storage={"c"})
    got = load_torch_state_dict(path)
    assert list(got) == ["a", "b", "c"]
    for name, array in state.items():
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], array.astype(np.float32))


def test_hf_directory_with_pytorch_bin(tiny_config, tmp_path):
    from safetensors.numpy import load_file

    encoder = BertEncoder(tiny_config)
    rng = np.random.default_rng(1)
    for v in encoder.weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
    hf = str(tmp_path / "hf")
    writers.save_hf(encoder, hf)
    state = {"bert." + k: v for k, v in load_file(os.path.join(hf, "model.safetensors")).items()}
    _write_torch_zip(os.path.join(hf, "pytorch_model.bin"), state)
    os.remove(os.path.join(hf, "model.safetensors"))
    loaded = load_encoder(hf)
    for a, b in zip(encoder.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_refuses_arbitrary_globals(tmp_path):
    path = tmp_path / "evil.bin"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"x": os.getcwd}, protocol=2))
    with pytest.raises(CheckpointError, match="unsupported object"):
        load_torch_state_dict(str(path))
    (tmp_path / "legacy.bin").write_bytes(b"\x80\x02not a zip")
    with pytest.raises(CheckpointError, match="not a zip-format PyTorch file"):
        load_torch_state_dict(str(tmp_path / "legacy.bin"))
