"""Lua Torch7 ``.t7`` files (the AdaIN authors' decoder.t7 and vgg_normalised.t7), read safely.

The binary format is a tree of tagged values with back-references. We parse it ourselves, with every
length checked against the bytes left, a nesting cap, and Lua functions refused (they are code),
then take the weights of each module of the top ``nn.Sequential`` by its 0-based position, which is
how pytorch-AdaIN's converted ``nn.Sequential`` numbers them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct

import numpy as np

from adain.errors import WeightsError, read_weights_bytes

StateDict = dict[str, np.ndarray]

_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN = range(6)
_FUNCTIONS = (6, 7, 8)
_MAX_DEPTH = 64
_MAX_DIMS = 16

# Torch7 tensor and storage element types (the Cuda ones are saved as their CPU data).
_ELEMENT_TYPES = {
    "Double": "<f8", "Float": "<f4", "Half": "<f2", "Long": "<i8", "Int": "<i4", "Short": "<i2",
    "Char": "<i1", "Byte": "<u1", "Cuda": "<f4", "CudaDouble": "<f8", "CudaHalf": "<f2",
    "CudaLong": "<i8", "CudaInt": "<i4", "CudaShort": "<i2", "CudaChar": "<i1", "CudaByte": "<u1",
}
_TENSORS = {f"torch.{k}Tensor": np.dtype(v) for k, v in _ELEMENT_TYPES.items()}
_STORAGES = {f"torch.{k}Storage": np.dtype(v) for k, v in _ELEMENT_TYPES.items()}


@dataclasses.dataclass(eq=False)
class _Storage:
  dtype: np.dtype
  numel: int
  data: memoryview


@dataclasses.dataclass(eq=False)
class _Tensor:
  dtype: np.dtype
  size: tuple[int, ...]
  stride: tuple[int, ...]
  offset: int  # 0-based
  storage: _Storage | None

  @property
  def numel(self) -> int:
    return math.prod(self.size) if self.size else 0  # Torch7 has no scalars: 0-D means empty


@dataclasses.dataclass(eq=False)
class _Object:
  """An instance of a Torch class other than tensors and storages, e.g. an nn module."""

  cls: str
  fields: object = None


_CONVOLUTIONS = ("SpatialConvolution", "SpatialConvolutionMM")  # weights (out, in, kH, kW)
_PENDING = object()  # a tensor or storage whose record is being read: it cannot refer to itself


class _Reader:
  def __init__(self, path, data: bytes):
    self.path = path
    self.data = memoryview(data)
    self.pos = 0
    self.memo: dict[int, object] = {}

  def fail(self, problem: str):
    raise WeightsError(self.path, problem)

  def left(self) -> int:
    return len(self.data) - self.pos

  def take(self, n: int) -> memoryview:
    if n > self.left():
      self.fail(f"truncated or corrupt file: needs {n} bytes at offset {self.pos}, "
                f"{self.left()} left")
    out = self.data[self.pos:self.pos + n]
    self.pos += n
    return out

  def unpack(self, fmt: str) -> tuple:
    return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

  def int(self) -> int:
    return self.unpack("<i")[0]

  def long(self) -> int:
    return self.unpack("<q")[0]

  def count(self, n: int, unit: int, what: str) -> int:
    """``n`` if it is a plausible number of ``unit``-byte items from here on."""
    if n < 0 or n * unit > self.left():
      self.fail(f"corrupt file: {what} of {n} at offset {self.pos}, only {self.left()} bytes left")
    return n

  def string(self) -> str:
    raw = self.take(self.count(self.int(), 1, "string length"))
    return bytes(raw).decode("latin-1")  # Lua strings are bytes; this keeps every one intact

  def obj(self, depth: int = 0):
    if depth > _MAX_DEPTH:
      self.fail(f"corrupt file: objects nested deeper than {_MAX_DEPTH}")
    tag = self.int()
    if tag == _NIL:
      return None
    if tag == _NUMBER:
      return self.unpack("<d")[0]
    if tag == _BOOLEAN:
      return self.int() == 1
    if tag == _STRING:
      return self.string()
    if tag in _FUNCTIONS:
      self.fail("refused: the file holds a Lua function (code), which weights never need")
    if tag not in (_TABLE, _TORCH):
      self.fail(f"corrupt or not a binary Torch7 file: type tag {tag} at offset {self.pos - 4}")
    index = self.int()
    if index in self.memo:
      if self.memo[index] is _PENDING:
        self.fail(f"corrupt file: object {index} refers to itself")
      return self.memo[index]
    return self.table(index, depth) if tag == _TABLE else self.torch_object(index, depth)

  def table(self, index: int, depth: int) -> dict:
    n = self.count(self.int(), 8, "table size")  # every key and value takes at least a tag
    t = self.memo[index] = {}
    for _ in range(n):
      key = self.obj(depth + 1)
      if not isinstance(key, (str, float, bool)):
        self.fail(f"unsupported: a table key of type {type(key).__name__}")
      t[key] = self.obj(depth + 1)
    return t

  def torch_object(self, index: int, depth: int):
    cls = self.string()
    if cls.startswith("V "):  # versioned records, the norm since 2013, name the class next
      cls = self.string()
    if cls in _STORAGES:
      self.memo[index] = _PENDING
      dtype = _STORAGES[cls]
      numel = self.count(self.long(), dtype.itemsize, f"{cls} size")
      value = _Storage(dtype, numel, self.take(numel * dtype.itemsize))
    elif cls in _TENSORS:
      self.memo[index] = _PENDING
      value = self.tensor(cls, depth)
    else:
      value = self.memo[index] = _Object(cls)  # registered first: it may refer to itself
      value.fields = self.obj(depth + 1)
    self.memo[index] = value
    return value

  def tensor(self, cls: str, depth: int) -> _Tensor:
    ndim = self.int()
    if not 0 <= ndim <= _MAX_DIMS:
      self.fail(f"corrupt file: {cls} with {ndim} dimensions at offset {self.pos}")
    size = self.unpack(f"<{ndim}q")
    stride = self.unpack(f"<{ndim}q")
    offset = self.long() - 1
    storage = self.obj(depth + 1)
    if storage is not None and not isinstance(storage, _Storage):
      self.fail(f"corrupt file: {cls} whose storage is a {type(storage).__name__}")
    if min(size + stride, default=0) < 0 or offset < 0:
      self.fail(f"corrupt file: {cls} with a negative size, stride or offset")
    t = _Tensor(_TENSORS[cls], size, stride, offset, storage)
    if t.numel:
      if storage is None or storage.dtype != t.dtype:
        self.fail(f"corrupt file: {cls} without a storage of its type")
      last = offset + sum((n - 1) * s for n, s in zip(size, stride))
      if last >= storage.numel:
        self.fail(f"corrupt file: {cls} reaches element {last} of a storage of {storage.numel}")
    if t.numel > len(self.data) or max(size, default=0) > len(self.data):
      self.fail(f"corrupt file: {cls} of shape {size} is larger than the file")
    return t


def _array(t: _Tensor) -> np.ndarray:
  """A native-order copy of a tensor that _Reader.tensor checked to lie inside its storage."""
  if not t.numel:
    return np.zeros(t.size, t.dtype.newbyteorder("="))
  base = np.frombuffer(t.storage.data, t.dtype, count=t.storage.numel)
  view = np.lib.stride_tricks.as_strided(
      base[t.offset:], t.size, [s * t.dtype.itemsize for s in t.stride], writeable=False)
  return np.array(view, t.dtype.newbyteorder("="), order="C")


def _conv_shape(path, i: str, m: _Object) -> tuple[int, ...]:
  """(out, in, kH, kW) from a SpatialConvolution's fields (old ones keep a 2-D weight)."""
  dims = []
  for name in ("nOutputPlane", "nInputPlane", "kH", "kW"):
    v = m.fields.get(name)
    if not isinstance(v, float) or not v.is_integer() or not 0 < v <= 2**31:
      raise WeightsError(path, f"corrupt file: module {i} ({m.cls}) has a bad {name}")
    dims.append(int(v))
  return tuple(dims)


def _sequential_modules(path, top) -> list:
  fields = top.fields if isinstance(top, _Object) else None
  modules = fields.get("modules") if isinstance(fields, dict) else None
  if not isinstance(modules, dict):
    what = top.cls if isinstance(top, _Object) else type(top).__name__
    raise WeightsError(path, f"not a Torch7 nn.Sequential: the file holds a {what}")
  if set(modules) != {float(k) for k in range(1, len(modules) + 1)}:
    raise WeightsError(path, "corrupt file: the module list is not numbered 1..n")
  return [modules[float(k)] for k in range(1, len(modules) + 1)]


def read_t7_state_dict(path: str | os.PathLike) -> StateDict:
  """``{"i.weight", "i.bias"}`` of each module with weights, i its 0-based Sequential position.

  Convolution weights come back as (out, in, kH, kW), whatever shape the file stores them in;
  arrays keep the stored element type (float32 for Float and Cuda tensors, float64 for Double).
  """
  return parse_t7_state_dict(read_weights_bytes(path), path)


def parse_t7_state_dict(data: bytes, path: str | os.PathLike | None = None) -> StateDict:
  """read_t7_state_dict of a file's bytes; ``path`` only names it in errors."""
  tensors = {}
  for i, m in enumerate(_sequential_modules(path, _Reader(path, data).obj())):
    if not isinstance(m, _Object) or not isinstance(m.fields, dict):
      raise WeightsError(path, f"not a Torch7 nn.Sequential: module {i} is not a Torch module")
    if "modules" in m.fields:
      raise WeightsError(path, f"unsupported: module {i} ({m.cls}) is a nested container")
    for name in ("weight", "bias"):
      t = m.fields.get(name)
      if t is not None and not isinstance(t, _Tensor):
        raise WeightsError(path, f"corrupt file: module {i} ({m.cls}) {name} is not a tensor")
      if t is not None:
        tensors[f"{i}.{name}"] = (t, m)
  if not tensors:
    raise WeightsError(path, "not AdaIN weights: the Sequential has no module with weights")
  if sum(t.numel for t, _ in tensors.values()) > len(data):  # zero strides could repeat a storage
    raise WeightsError(path, "corrupt file: its weights claim more elements than it has bytes")
  out = {}
  for key, (t, m) in tensors.items():
    arr = _array(t)
    if key.endswith(".weight") and m.cls.split(".")[-1] in _CONVOLUTIONS:
      shape = _conv_shape(path, key.split(".")[0], m)
      if arr.shape not in (shape, (shape[0], math.prod(shape[1:]))):
        raise WeightsError(path, f"corrupt file: {key} ({m.cls}) of shape {arr.shape} does not "
                                 f"fit {shape}")
      arr = arr.reshape(shape)
    out[key] = arr
  return out
