"""Writes tests/fixtures/weights: small weights files, their expected arrays, and hostile files.

Run with the fixtures venv (``.venv-fixtures/bin/python tools/make_weight_fixtures.py``): the good
.pth files are written by ``torch.save`` itself in both layouts and checked with ``torch.load``; the
.t7 files come from the small Torch7 writer below and are checked with ``torchfile``. All values
are seeded; the bytes of legacy .pth files still change between runs, as torch.save names their
storages by memory address.

The byte-level writers (pickle opcodes, the two torch.save containers, Torch7) import neither torch
nor torchfile (imported only where fixtures are made), so the tests reuse them for mutated files.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "weights"
MARKER = "adain_pwned"  # hostile payloads create this file in the working directory if ever run
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# --- pickle opcodes, for files Python's pickler would never write -------------------------------

PROTO2 = b"\x80\x02"
STOP = b"."


def p_int(n: int) -> bytes:
  if 0 <= n < 256:
    return b"K" + bytes([n])
  if 0 <= n < 65536:
    return b"M" + struct.pack("<H", n)
  if -2**31 <= n < 2**31:
    return b"J" + struct.pack("<i", n)
  raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
  return b"\x8a" + bytes([len(raw)]) + raw


def p_str(s: str) -> bytes:
  raw = s.encode()
  return b"X" + struct.pack("<I", len(raw)) + raw


def p_global(module: str, name: str) -> bytes:
  return b"c" + f"{module}\n{name}\n".encode()


def p_tuple(*items: bytes) -> bytes:
  return b"(" + b"".join(items) + b"t"


def p_ordered_dict() -> bytes:
  return p_global("collections", "OrderedDict") + b")R"


def p_tensor(stype: str, key: str, numel: int, offset: int, size, stride, legacy: bool,
             rebuild: str = "_rebuild_tensor_v2") -> bytes:
  """What torch.save writes for one tensor: _rebuild_tensor_v2(persistent storage id, ...)."""
  pid = [p_str("storage"), p_global("torch", stype), p_str(key), p_str("cpu"), p_int(numel)]
  pid_op = p_tuple(*pid, *([b"N"] if legacy else [])) + b"Q"
  args = [pid_op, p_int(offset), p_tuple(*map(p_int, size)), p_tuple(*map(p_int, stride))]
  if rebuild == "_rebuild_tensor_v2":
    args += [b"\x89", p_ordered_dict()]
  return p_global("torch._utils", rebuild) + p_tuple(*args) + b"R"


def p_state_dict(entries) -> bytes:
  """A protocol-2 pickle of OrderedDict(entries), each value given as opcodes."""
  body = b"".join(p_str(k) + v for k, v in entries)
  return PROTO2 + p_ordered_dict() + b"(" + body + b"u" + STOP


def _write_records(z: zipfile.ZipFile, records):
  """Stored records with a fixed timestamp, so that reruns write identical bytes."""
  for name, data in records:
    z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def zip_file(pickle_bytes: bytes, storages: dict[str, bytes], top: str = "archive",
             byteorder: bytes = b"little") -> bytes:
  """The torch.save zip layout (uncompressed records under one top folder)."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    _write_records(z, [(f"{top}/data.pkl", pickle_bytes), (f"{top}/byteorder", byteorder),
                       *((f"{top}/data/{k}", v) for k, v in storages.items()),
                       (f"{top}/version", b"3\n")])
  return buf.getvalue()


def legacy_file(pickle_bytes: bytes, storages: list[tuple[str, int, bytes]]) -> bytes:
  """The legacy layout: magic, protocol, sys_info, main pickle, keys, then count + bytes each."""
  sizes = dict(short=2, int=4, long=4)
  sys_info = dict(protocol_version=1001, little_endian=True, type_sizes=sizes)
  parts = [pickle.dumps(v, protocol=2) for v in (LEGACY_MAGIC, 1001, sys_info)]
  parts += [pickle_bytes, pickle.dumps([k for k, _, _ in storages], protocol=2)]
  parts += [struct.pack("<q", n) + data for _, n, data in storages]
  return b"".join(parts)


# --- Torch7 binary writer ------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class T7Object:
  cls: str
  fields: object
  versioned: bool = True  # records before 2013 have no "V 1" line


@dataclasses.dataclass(eq=False)
class T7Storage:
  cls: str
  array: np.ndarray  # 1-D, of the storage's element type


@dataclasses.dataclass(eq=False)
class T7Tensor:
  cls: str
  size: tuple
  stride: tuple
  offset: int  # 1-based, as Torch7 writes it
  storage: object


@dataclasses.dataclass(eq=False)
class T7Function:
  dumped: bytes
  upvalues: object = None


class T7Raw(bytes):
  """Bytes written as they are, for records no well-formed writer would produce."""


def t7_tensor(arr, cls: str = "torch.FloatTensor") -> T7Tensor:
  """A contiguous tensor with its own storage."""
  arr = np.ascontiguousarray(arr)
  stride = tuple(s // arr.itemsize for s in arr.strides)
  storage = T7Storage(cls.replace("Tensor", "Storage"), arr.ravel())
  return T7Tensor(cls, arr.shape, stride, 1, storage)


def t7_empty(cls: str = "torch.FloatTensor") -> T7Tensor:
  return T7Tensor(cls, (), (), 1, None)


def t7_bytes(obj) -> bytes:
  """The binary torch.save(obj) of Torch7: tagged values, tables and objects written once."""
  out = bytearray()
  index: dict[int, tuple[int, object]] = {}

  def put(fmt, *v):
    out.extend(struct.pack(fmt, *v))

  def string(s):
    raw = s.encode("latin-1") if isinstance(s, str) else s
    put("<i", len(raw))
    out.extend(raw)

  def first(tag, x) -> bool:
    put("<i", tag)
    if id(x) in index:
      put("<i", index[id(x)][0])
      return False
    index[id(x)] = (len(index) + 1, x)
    put("<i", len(index))
    return True

  def write(x):
    if isinstance(x, T7Raw):
      out.extend(x)
    elif x is None:
      put("<i", 0)
    elif isinstance(x, bool):
      put("<ii", 5, int(x))
    elif isinstance(x, (int, float)):
      put("<id", 1, float(x))
    elif isinstance(x, str):
      put("<i", 2)
      string(x)
    elif isinstance(x, dict):
      if first(3, x):
        put("<i", len(x))
        for k, v in x.items():
          write(k)
          write(v)
    elif isinstance(x, T7Function):
      if first(6, x):
        string(x.dumped)
        write(x.upvalues)
    elif first(4, x):
      if not isinstance(x, T7Object) or x.versioned:
        string("V 1")
      string(x.cls)
      if isinstance(x, T7Storage):
        put("<q", len(x.array))
        out.extend(x.array.astype(x.array.dtype.newbyteorder("<")).tobytes())
      elif isinstance(x, T7Tensor):
        put("<i", len(x.size))
        put(f"<{len(x.size)}q", *x.size)
        put(f"<{len(x.stride)}q", *x.stride)
        put("<q", x.offset)
        write(x.storage)
      else:
        write(x.fields)

  write(obj)
  return bytes(out)


def t7_module(cls: str, **fields) -> T7Object:
  base = {"_type": "torch.FloatTensor", "train": False, "output": t7_empty(),
          "gradInput": t7_empty()}
  return T7Object(cls, {**base, **fields})


def t7_conv(weight: T7Tensor, bias: T7Tensor, n_out, n_in, k, cls="nn.SpatialConvolution"):
  return t7_module(cls, weight=weight, bias=bias, nOutputPlane=n_out, nInputPlane=n_in, kH=k,
                   kW=k, dH=1, dW=1, padH=0, padW=0)


def t7_sequential(modules: list) -> T7Object:
  return t7_module("nn.Sequential", modules={i + 1: m for i, m in enumerate(modules)})


def tiny_t7(rng: np.random.Generator):
  """An AdaIN-like Sequential covering the weight layouts; returns (its bytes, expected arrays)."""
  w0, b0 = rng.standard_normal((3, 3, 1, 1), np.float32), rng.standard_normal(3, np.float32)
  w2, b2 = rng.standard_normal((4, 3, 3, 3), np.float32), rng.standard_normal(4, np.float32)
  w6, b6 = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal(2)
  w7, b7 = rng.standard_normal((1, 2, 3, 3), np.float32), rng.standard_normal(1, np.float32)
  # Module 6 (DoubleTensor): bias and a non-contiguous weight share one storage.
  shared = T7Storage("torch.DoubleStorage", np.concatenate([b6, w6.transpose(1, 0, 2, 3).ravel()]))
  relu = t7_module("nn.ReLU", inplace=True)
  relu.versioned = False
  modules = [
      t7_conv(t7_tensor(w0), t7_tensor(b0), 3, 3, 1),
      t7_module("nn.SpatialReflectionPadding", pad_l=1, pad_r=1, pad_t=1, pad_b=1),
      t7_conv(t7_tensor(w2.reshape(4, 27)), t7_tensor(b2), 4, 3, 3),  # old 2-D (MM) weight
      relu,
      t7_module("nn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2,
                indices=t7_empty("torch.LongTensor")),
      t7_module("nn.SpatialUpSamplingNearest", scale_factor=2),
      t7_conv(T7Tensor("torch.DoubleTensor", (2, 4, 3, 3), (9, 18, 3, 1), 3, shared),
              T7Tensor("torch.DoubleTensor", (2,), (1,), 1, shared), 2, 4, 3),
      t7_conv(t7_tensor(w7, "torch.CudaTensor"), t7_tensor(b7, "torch.CudaTensor"), 1, 2, 3,
              cls="cudnn.SpatialConvolution"),
  ]
  modules[3].fields["output"] = modules[2].fields["output"]  # an in-place ReLU shares its output
  expected = {"0.weight": w0, "0.bias": b0, "2.weight": w2, "2.bias": b2, "6.weight": w6,
              "6.bias": b6, "7.weight": w7, "7.bias": b7}
  return t7_bytes(t7_sequential(modules)), expected


def hostile_t7() -> dict[str, bytes]:
  """Files that must be refused: code, cycles, absurd sizes, deep nesting."""
  def conv(weight):
    return t7_conv(weight, t7_tensor(np.zeros(2, np.float32)), 2, 1, 1)

  def head(cls: str) -> bytes:  # a Torch record's tag, index and class lines
    return struct.pack("<iii", 4, 99, 3) + b"V 1" + struct.pack("<i", len(cls)) + cls.encode()

  looped = t7_sequential([])
  looped.fields["modules"][1] = looped
  self_tensor = T7Tensor("torch.FloatTensor", (2,), (1,), 1, None)
  self_tensor.storage = self_tensor
  huge_storage = T7Tensor("torch.FloatTensor", (2, 1, 1, 1), (1, 1, 1, 1), 1, T7Raw(
      head("torch.FloatStorage") + struct.pack("<q", 2**60) + bytes(8)))
  huge_ndim = T7Raw(head("torch.FloatTensor") + struct.pack("<i", 2**30) + bytes(64))
  out_of_bounds = T7Tensor("torch.FloatTensor", (2, 1, 3, 3), (9, 9, 3, 1), 1,
                           T7Storage("torch.FloatStorage", np.ones(10, np.float32)))
  deep = b"".join(struct.pack("<iiiid", 3, i + 1, 1, 1, 1.0) for i in range(1000))
  return {
      "function": t7_bytes(t7_sequential([t7_module("nn.ReLU", hook=T7Function(b"\x1bLua code"))])),
      "self_ref_sequential": t7_bytes(looped),
      "self_ref_tensor": t7_bytes(t7_sequential([conv(self_tensor)])),
      "huge_string": struct.pack("<ii", 2, 2**31 - 1) + b"weights",
      "huge_table": struct.pack("<iii", 3, 1, 2**31 - 1) + bytes(16),
      "huge_storage": t7_bytes(t7_sequential([conv(huge_storage)])),
      "huge_ndim": t7_bytes(t7_sequential([conv(huge_ndim)])),
      "out_of_bounds": t7_bytes(t7_sequential([conv(out_of_bounds)])),
      "deep": deep + struct.pack("<i", 0),
      "bad_tag": struct.pack("<ii", 42, 1),
  }


# --- hostile pickles -----------------------------------------------------------------------------


def hostile_pickles(legacy: bool) -> dict[str, tuple[bytes, dict[str, bytes]]]:
  """Hand-written pickles (with the storage they use) that a safe reader must refuse."""
  data = np.arange(4, dtype="<f4").tobytes()
  tensor = p_tensor("FloatStorage", "0", 4, 0, (4,), (1,), legacy)
  od = p_global("collections", "OrderedDict")
  touch = p_str(f"touch {MARKER}")
  pickles = {
      "newobj": PROTO2 + od + b")\x81" + STOP,
      "newobj_ex": b"\x80\x04" + od + b")}\x92" + STOP,
      "inst": PROTO2 + b"(" + touch + b"ios\nsystem\n" + STOP,
      "obj": PROTO2 + b"(" + od + b"o" + STOP,
      "ext": PROTO2 + b"\x82\x01" + STOP,
      "build_class": PROTO2 + od + b"}" + p_str("__reduce__") + p_int(1) + b"sb" + STOP,
      "build_tensor": p_state_dict([("0.weight", tensor + b"}" + p_str("__class__") + p_int(1)
                                     + b"sb")]),
      "build_slots": PROTO2 + p_ordered_dict() + b"N}" + p_str("x") + p_int(1) + b"s\x86b" + STOP,
      "global_torch_load": p_state_dict([("0.weight", p_global("torch", "load")
                                          + p_tuple(p_str("x.pth")) + b"R")]),
      "global_getattr": p_state_dict([("0.weight", p_global("builtins", "getattr"))]),
      "stack_global_system": b"\x80\x04" + p_str("os") + p_str("system") + b"\x93"
                             + p_tuple(touch) + b"R" + STOP,
      "reduce_storage": p_state_dict([("0.weight", p_global("torch", "FloatStorage") + b")R")]),
      "pid_module": p_state_dict([("0.weight", p_tuple(p_str("module"), p_str("os")) + b"Q")]),
      "pid_traversal": p_state_dict([("0.weight", p_tensor("FloatStorage", "../0", 4, 0, (4,),
                                                           (1,), legacy))]),
  }
  return {name: (pkl, {"0": data}) for name, pkl in pickles.items()}


def contained(pkl: bytes, storages: dict[str, bytes], legacy: bool) -> bytes:
  """``pkl`` in either torch.save layout, with float32 storages."""
  if legacy:
    return legacy_file(pkl, [(k, len(v) // 4, v) for k, v in storages.items()])
  return zip_file(pkl, storages)


# --- the fixtures --------------------------------------------------------------------------------


class _Reduce:
  """Pickles as a call of ``fn(arg)``: what a hostile checkpoint embeds."""

  def __init__(self, fn, arg):
    self.fn, self.arg = fn, arg

  def __reduce__(self):
    return self.fn, (self.arg,)


def _save_both(torch, obj, name: str, **kwargs):
  torch.save(obj, OUT / f"{name}_zip.pth", **kwargs)
  torch.save(obj, OUT / f"{name}_legacy.pth", _use_new_zipfile_serialization=False, **kwargs)


def _big_endian(src: Path, dst: Path):
  """The same zip with byteorder "big" and every (float32) storage byte-swapped."""
  records = []
  with zipfile.ZipFile(src) as zin:
    for info in zin.infolist():
      data = zin.read(info)
      if info.filename.endswith("/byteorder"):
        data = b"big"
      elif "/data/" in info.filename:
        data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
      records.append((info.filename, data))
  with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
    _write_records(zout, records)


def torch_fixtures():
  import torch

  torch.manual_seed(0)
  net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
  tiny = net.state_dict()  # an OrderedDict carrying _metadata, as pytorch-AdaIN's files do
  base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
  mixed = collections.OrderedDict([
      ("base", base),
      ("view.t", base.t()[2:5]),  # the rest share base's storage, at offsets and strides
      ("view.row", base[3, 2:7]),
      ("view.step", base[::2, 1::3]),
      ("expanded", torch.randn(3).expand(4, 3)),
      ("param", torch.nn.Parameter(torch.randn(2, 2))),
      ("f64", torch.randn(3, 2, dtype=torch.float64)),
      ("f16", torch.randn(5).half()),
      ("bf16", torch.randn(4).bfloat16()),
      ("i64", torch.arange(5) * -3),
      ("i32", torch.arange(4, dtype=torch.int32)),
      ("u8", torch.arange(250, 256, dtype=torch.uint8)),
      ("bool", torch.tensor([True, False, True])),
      ("scalar", torch.tensor(2.5)),
      ("empty", torch.zeros(0, 3)),
  ])
  for name, sd in (("tiny", tiny), ("mixed", mixed)):
    _save_both(torch, sd, name)
    expected = {k: (v.float() if v.dtype == torch.bfloat16 else v).detach().numpy()
                for k, v in sd.items()}
    np.savez(OUT / f"{name}.npz", **expected)
    for layout in ("zip", "legacy"):
      loaded = torch.load(OUT / f"{name}_{layout}.pth", weights_only=True)
      assert all(torch.equal(loaded[k], sd[k]) for k in sd), (name, layout)
  _big_endian(OUT / "tiny_zip.pth", OUT / "tiny_bigendian.pth")
  loaded = torch.load(OUT / "tiny_bigendian.pth", weights_only=True)
  assert all(torch.equal(loaded[k], tiny[k]) for k in tiny)

  _save_both(torch, {"0.weight": _Reduce(os.system, f"touch {MARKER}")}, "evil_reduce_system")
  _save_both(torch, {"0.weight": _Reduce(exec, f"open({MARKER!r}, 'w').close()")},
             "evil_reduce_exec_p4", pickle_protocol=4)
  _save_both(torch, torch.nn.Conv2d(1, 1, 1), "evil_whole_model")


def t7_fixtures():
  import torchfile

  data, expected = tiny_t7(np.random.default_rng(0))
  (OUT / "tiny.t7").write_bytes(data)
  np.savez(OUT / "tiny_t7.npz", **expected)
  seq = torchfile.load(str(OUT / "tiny.t7"))  # an independent reader agrees with our writer
  for i, m in enumerate(seq.modules):
    if m.weight is not None:
      np.testing.assert_array_equal(m.weight.reshape(expected[f"{i}.weight"].shape),
                                    expected[f"{i}.weight"])
      np.testing.assert_array_equal(m.bias, expected[f"{i}.bias"])
  assert sorted(f"{i}.weight" for i, m in enumerate(seq.modules) if m.weight is not None) == \
      sorted(k for k in expected if k.endswith("weight"))
  for name, raw in hostile_t7().items():
    (OUT / f"evil_{name}.t7").write_bytes(raw)


def main():
  OUT.mkdir(parents=True, exist_ok=True)
  for old in OUT.iterdir():
    old.unlink()
  torch_fixtures()
  for legacy in (False, True):
    for name, (pkl, storages) in hostile_pickles(legacy).items():
      layout = "legacy" if legacy else "zip"
      (OUT / f"evil_{name}_{layout}.pth").write_bytes(contained(pkl, storages, legacy))
  t7_fixtures()
  total = sum(p.stat().st_size for p in OUT.iterdir())
  print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
  main()
