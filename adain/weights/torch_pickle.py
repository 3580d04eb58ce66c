"""State dicts written by ``torch.save``, read without torch and without running the file's code.

A pickle is a program: unpickling may call any importable function, so ``pickle.load`` on a
downloaded file is remote code execution. Here a small opcode interpreter builds only what a state
dict is made of (dicts, tuples, numbers, strings, OrderedDict, tensor records) and refuses every
other global, call or object construction before it would happen. Tensors are copied out of the
stored bytes after their sizes, strides and offsets are checked against them.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import struct
import zipfile

import numpy as np

from adain.errors import WeightsError, read_weights_bytes

StateDict = dict[str, np.ndarray]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy (pre-zip) torch.save file
_LEGACY_PROTOCOL = 1001
_MAX_DIMS = 64
_MAX_INT = 2**62  # larger sizes, strides and offsets are corrupt; refusing them keeps ints small
_MAX_GLOBAL_LINE = 256


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str
  dtype: str  # numpy type code without byte order; BFloat16 is read as raw uint16

  @property
  def itemsize(self) -> int:
    return np.dtype(self.dtype).itemsize


_STORAGE_TYPES = {t.name: t for t in (
    _StorageType("FloatStorage", "f4"),
    _StorageType("DoubleStorage", "f8"),
    _StorageType("HalfStorage", "f2"),
    _StorageType("BFloat16Storage", "u2"),
    _StorageType("LongStorage", "i8"),
    _StorageType("IntStorage", "i4"),
    _StorageType("ShortStorage", "i2"),
    _StorageType("CharStorage", "i1"),
    _StorageType("ByteStorage", "u1"),
    _StorageType("BoolStorage", "u1"),
    _StorageType("ComplexFloatStorage", "c8"),
    _StorageType("ComplexDoubleStorage", "c16"),
)}


@dataclasses.dataclass(frozen=True)
class _Global:
  """What GLOBAL pushes: a name, never the object itself (nothing is imported)."""

  module: str
  name: str


# Callables a state dict may REDUCE; _Unpickler.reduce stands in for them (torch is never used).
_REBUILD_TENSOR_V2 = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_ORDERED_DICT = _Global("collections", "OrderedDict")
_CALLABLES = (_REBUILD_TENSOR_V2, _REBUILD_TENSOR, _REBUILD_PARAMETER, _ORDERED_DICT)


@dataclasses.dataclass(eq=False)
class _Storage:
  key: str
  stype: _StorageType
  numel: int
  data: bytes | memoryview | None = None


@dataclasses.dataclass(eq=False)
class _Tensor:
  storage: _Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]

  @property
  def numel(self) -> int:
    return math.prod(self.size)


def _describe(obj) -> str:
  if isinstance(obj, _Global):
    return f"{obj.module}.{obj.name}"
  name = "tensor" if isinstance(obj, _Tensor) else type(obj).__name__
  return f"an {name}" if name[0] in "AEIOUaeiou" else f"a {name}"


_SCALAR_KEYS = (str, int, float, bytes, bool, type(None))  # hashing these never recurses

_OPNAMES = {
    b"\x81": "NEWOBJ", b"\x92": "NEWOBJ_EX", b"i": "INST", b"o": "OBJ", b"\x82": "EXT1",
    b"\x83": "EXT2", b"\x84": "EXT4", b"P": "PERSID", b"\x97": "NEXT_BUFFER",
    b"\x98": "READONLY_BUFFER",
}


class _Unpickler:
  """Interprets one pickle (protocols 2 to 5, the binary opcodes) from ``data[pos:]``."""

  def __init__(self, path, data: bytes | memoryview, pos: int, persistent_load=None):
    self.path = path
    self.data = data
    self.pos = pos
    self.persistent_load = persistent_load
    self.stack: list = []
    self.metastack: list[list] = []
    self.memo: dict[int, object] = {}

  def fail(self, problem: str):
    raise WeightsError(self.path, problem)

  def take(self, n: int) -> bytes:
    if n < 0 or n > len(self.data) - self.pos:
      self.fail(f"truncated or corrupt pickle: needs {n} bytes at offset {self.pos}, "
                f"{len(self.data) - self.pos} left")
    out = bytes(self.data[self.pos:self.pos + n])
    self.pos += n
    return out

  def unpack(self, fmt: str):
    return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

  def push(self, value):
    """Appends to the current stack (which pop_mark may have just replaced)."""
    self.stack.append(value)

  def pop(self):
    if not self.stack:
      self.fail(f"corrupt pickle: stack underflow at offset {self.pos}")
    return self.stack.pop()

  def top(self):
    if not self.stack:
      self.fail(f"corrupt pickle: stack underflow at offset {self.pos}")
    return self.stack[-1]

  def pop_mark(self) -> list:
    if not self.metastack:
      self.fail(f"corrupt pickle: no MARK before offset {self.pos}")
    items = self.stack
    self.stack = self.metastack.pop()
    return items

  def text(self, raw: bytes) -> str:
    try:
      return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
      self.fail(f"corrupt pickle: invalid UTF-8 string before offset {self.pos}")

  def line(self) -> str:
    end = bytes(self.data[self.pos:self.pos + _MAX_GLOBAL_LINE]).find(b"\n")
    if end < 0:
      self.fail(f"corrupt pickle: unterminated name at offset {self.pos}")
    raw = self.take(end + 1)[:-1]
    try:
      return raw.decode("ascii")
    except UnicodeDecodeError:
      self.fail(f"corrupt pickle: non-ASCII global name at offset {self.pos}")

  def set_item(self, d, key, value):
    if type(d) not in (dict, collections.OrderedDict):
      self.fail(f"refused: SETITEM on a {type(d).__name__}, not a dict")
    if not isinstance(key, _SCALAR_KEYS):
      self.fail(f"refused: dict key of type {type(key).__name__}")
    d[key] = value

  def memo_get(self, index: int):
    if index not in self.memo:
      self.fail(f"corrupt pickle: memo entry {index} read before it is written")
    self.stack.append(self.memo[index])

  def memo_put(self, index: int):
    self.memo[index] = self.top()

  def find_global(self, module: str, name: str) -> _Global:
    g = _Global(module, name)
    if g in _CALLABLES or (module == "torch" and name in _STORAGE_TYPES):
      return g
    self.fail(f"refused: the pickle asks for {module}.{name}, which a state dict never needs "
              "(is it a whole pickled model, or code?)")

  def reduce(self, func, args):
    if not isinstance(func, _Global) or func not in _CALLABLES:
      self.fail(f"refused: the pickle calls {_describe(func)}")
    if type(args) is not tuple:
      self.fail("corrupt pickle: REDUCE arguments are not a tuple")
    if func == _ORDERED_DICT:
      return self.ordered_dict(args)
    if func == _REBUILD_PARAMETER:
      if len(args) != 3 or not isinstance(args[0], _Tensor):
        self.fail("corrupt pickle: bad _rebuild_parameter arguments")
      return args[0]
    return self.rebuild_tensor(args, v2=func == _REBUILD_TENSOR_V2)

  def ordered_dict(self, args) -> collections.OrderedDict:
    """OrderedDict() (Python 3 pickles) or OrderedDict([[k, v], ...]) (Python 2 pickles)."""
    d = collections.OrderedDict()
    if args == ():
      return d
    if len(args) != 1 or type(args[0]) is not list:
      self.fail("refused: OrderedDict called with unexpected arguments")
    for pair in args[0]:
      if type(pair) not in (list, tuple) or len(pair) != 2:
        self.fail("refused: OrderedDict called with unexpected arguments")
      self.set_item(d, pair[0], pair[1])
    return d

  def rebuild_tensor(self, args, v2: bool) -> _Tensor:
    """_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])."""
    if len(args) not in ((6, 7) if v2 else (4,)):
      self.fail(f"corrupt pickle: {len(args)} arguments to a tensor rebuild")
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, _Storage):
      self.fail("corrupt pickle: a tensor without a storage")
    if v2:
      requires_grad, hooks = args[4:6]
      metadata = args[6] if len(args) == 7 else None
      if type(requires_grad) is not bool or type(hooks) not in (dict, collections.OrderedDict):
        self.fail("corrupt pickle: bad tensor rebuild arguments")
      if hooks:
        self.fail("refused: a tensor with backward hooks")
      if metadata:
        self.fail("unsupported: a tensor with extra metadata")
    if not self.is_count(offset):
      self.fail("corrupt pickle: bad tensor storage offset")
    for dims in (size, stride):
      if type(dims) is not tuple or len(dims) > _MAX_DIMS or not all(map(self.is_count, dims)):
        self.fail("corrupt pickle: bad tensor size or stride")
    if len(size) != len(stride):
      self.fail("corrupt pickle: tensor size and stride differ in length")
    return _Tensor(storage, offset, size, stride)

  @staticmethod
  def is_count(x) -> bool:
    return type(x) is int and 0 <= x < _MAX_INT

  def build(self, obj, state):
    """BUILD only as torch uses it: setting ``_metadata`` on a state dict (we drop it)."""
    if type(obj) is not collections.OrderedDict or type(state) is not dict:
      self.fail(f"refused: BUILD (setting state) of a {type(state).__name__} on {_describe(obj)}, "
                "which only a state dict's metadata needs")
    if not all(type(k) is str for k in state):
      self.fail("refused: BUILD with non-string attribute names")

  def load(self):
    """The unpickled object and the offset just past its STOP."""
    while True:
      op = self.take(1)
      if op == b".":
        value = self.pop()
        if self.stack or self.metastack:
          self.fail("corrupt pickle: objects left on the stack at STOP")
        return value, self.pos
      handler = _DISPATCH.get(op)
      if handler is None:
        name = _OPNAMES.get(op)
        self.fail(f"refused: pickle opcode {name} is never needed by a state dict" if name else
                  f"unsupported pickle opcode {op!r} at offset {self.pos - 1}")
      handler(self)

  def persid(self):
    pid = self.pop()
    if self.persistent_load is None:
      self.fail("corrupt file: a persistent id outside the state dict pickle")
    self.stack.append(self.persistent_load(pid))

  def global_(self):
    module = self.line()
    self.stack.append(self.find_global(module, self.line()))

  def stack_global(self):
    name, module = self.pop(), self.pop()
    if type(name) is not str or type(module) is not str:
      self.fail("corrupt pickle: STACK_GLOBAL of non-strings")
    self.stack.append(self.find_global(module, name))

  def reduce_(self):
    args = self.pop()
    self.stack.append(self.reduce(self.pop(), args))

  def build_(self):
    state = self.pop()
    self.build(self.top(), state)

  def setitem(self):
    value, key = self.pop(), self.pop()
    self.set_item(self.top(), key, value)

  def setitems(self):
    items = self.pop_mark()
    if len(items) % 2:
      self.fail("corrupt pickle: odd number of items in SETITEMS")
    d = self.top()
    for i in range(0, len(items), 2):
      self.set_item(d, items[i], items[i + 1])

  def dict_from_mark(self):
    items = self.pop_mark()
    if len(items) % 2:
      self.fail("corrupt pickle: odd number of items in DICT")
    d = {}
    for i in range(0, len(items), 2):
      self.set_item(d, items[i], items[i + 1])
    self.stack.append(d)

  def appends(self, items: list):
    lst = self.top()
    if type(lst) is not list:
      self.fail(f"refused: APPEND to a {type(lst).__name__}, not a list")
    lst.extend(items)

  def tuple_of(self, n: int):
    if len(self.stack) < n:
      self.fail(f"corrupt pickle: stack underflow at offset {self.pos}")
    items = tuple(self.stack[len(self.stack) - n:])
    del self.stack[len(self.stack) - n:]
    self.stack.append(items)

  def mark(self):
    self.metastack.append(self.stack)
    self.stack = []

  def frame(self):
    if self.unpack("<Q") > len(self.data) - self.pos:
      self.fail("truncated pickle: frame longer than the data")

  def long(self, n: int) -> int:
    return int.from_bytes(self.take(n), "little", signed=True)

  def push_text(self, fmt: str):
    self.stack.append(self.text(self.take(self.unpack(fmt))))

  def push_bytes(self, fmt: str):
    self.stack.append(self.take(self.unpack(fmt)))


def _push(value):
  return lambda u: u.stack.append(value)


def _push_unpacked(fmt: str):
  return lambda u: u.stack.append(u.unpack(fmt))


_U = _Unpickler
_DISPATCH = {
    b"\x80": lambda u: u.take(1),  # PROTO
    b"\x95": _U.frame,
    b"(": _U.mark,
    b"0": lambda u: u.pop(),
    b"1": lambda u: u.pop_mark(),
    b"2": lambda u: u.stack.append(u.top()),
    b"N": _push(None),
    b"\x88": _push(True),
    b"\x89": _push(False),
    b")": _push(()),
    b"J": _push_unpacked("<i"),
    b"K": _push_unpacked("<B"),
    b"M": _push_unpacked("<H"),
    b"G": _push_unpacked(">d"),
    b"\x8a": lambda u: u.stack.append(u.long(u.unpack("<B"))),
    b"\x8b": lambda u: u.stack.append(u.long(u.unpack("<i"))),
    b"X": lambda u: u.push_text("<I"),
    b"\x8c": lambda u: u.push_text("<B"),
    b"\x8d": lambda u: u.push_text("<Q"),
    b"T": lambda u: u.push_text("<i"),  # Python 2 byte strings: torch.load decodes them as UTF-8
    b"U": lambda u: u.push_text("<B"),
    b"B": lambda u: u.push_bytes("<I"),
    b"C": lambda u: u.push_bytes("<B"),
    b"\x8e": lambda u: u.push_bytes("<Q"),
    b"t": lambda u: u.push(tuple(u.pop_mark())),
    b"\x85": lambda u: u.tuple_of(1),
    b"\x86": lambda u: u.tuple_of(2),
    b"\x87": lambda u: u.tuple_of(3),
    b"]": lambda u: u.stack.append([]),
    b"l": lambda u: u.push(u.pop_mark()),
    b"a": lambda u: u.appends([u.pop()]),
    b"e": lambda u: u.appends(u.pop_mark()),
    b"}": lambda u: u.stack.append({}),
    b"d": _U.dict_from_mark,
    b"s": _U.setitem,
    b"u": _U.setitems,
    b"h": lambda u: u.memo_get(u.unpack("<B")),
    b"j": lambda u: u.memo_get(u.unpack("<I")),
    b"q": lambda u: u.memo_put(u.unpack("<B")),
    b"r": lambda u: u.memo_put(u.unpack("<I")),
    b"\x94": lambda u: u.memo_put(len(u.memo)),
    b"c": _U.global_,
    b"\x93": _U.stack_global,
    b"Q": _U.persid,
    b"R": _U.reduce_,
    b"b": _U.build_,
}


class _Storages:
  """The storages named by persistent ids: ('storage', type, key, location, numel[, view])."""

  def __init__(self, path, legacy: bool):
    self.path = path
    self.legacy = legacy
    self.by_key: dict[str, _Storage] = {}

  def __call__(self, pid) -> _Storage:
    if type(pid) is not tuple or not pid or pid[0] not in ("storage", b"storage"):
      kind = pid[0] if type(pid) is tuple and pid and type(pid[0]) is str else type(pid).__name__
      raise WeightsError(self.path, f"refused: persistent id of kind {kind!r}, not a storage "
                                    "(is it a whole pickled model?)")
    if len(pid) != (6 if self.legacy else 5):
      raise WeightsError(self.path, "corrupt pickle: malformed storage id")
    _, stype, key, location, numel = pid[:5]
    if self.legacy and pid[5] is not None:
      raise WeightsError(self.path, "unsupported: a storage view (torch < 0.4 file)")
    if not isinstance(stype, _Global) or stype.module != "torch" or stype.name not in _STORAGE_TYPES:
      raise WeightsError(self.path, "corrupt pickle: storage id without a storage type")
    if type(key) is not str or not key.isalnum() or not key.isascii() or type(location) is not str:
      raise WeightsError(self.path, "corrupt pickle: bad storage key")
    if not _Unpickler.is_count(numel):
      raise WeightsError(self.path, f"corrupt pickle: bad size for storage {key}")
    st = _STORAGE_TYPES[stype.name]
    known = self.by_key.setdefault(key, _Storage(key, st, numel))
    if known.stype != st or known.numel != numel:
      raise WeightsError(self.path, f"unsupported: storage {key} is used with two types or sizes")
    return known


def _state_dict(path, obj) -> dict[str, _Tensor]:
  if type(obj) not in (dict, collections.OrderedDict):
    raise WeightsError(path, f"not a state dict: the file holds a {type(obj).__name__}")
  for key, value in obj.items():
    if type(key) is not str:
      raise WeightsError(path, f"not a state dict: key of type {type(key).__name__}")
    if not isinstance(value, _Tensor):
      raise WeightsError(path, f"not a state dict: {key!r} is a {type(value).__name__}, "
                               "not a tensor")
  return obj


def _to_arrays(path, tensors: dict[str, _Tensor], little: bool, budget: int) -> StateDict:
  """Copies each tensor out of its storage bytes, after checking it stays inside them.

  ``budget`` (the file size) caps the elements of all tensors together, and every dimension, so
  that views with zero strides cannot make us allocate more than the file could plausibly hold.
  """
  total = sum(t.numel for t in tensors.values())
  if total > budget or any(n > budget for t in tensors.values() for n in t.size):
    raise WeightsError(path, f"corrupt file: its tensors claim {total} elements, more than "
                             f"its {budget} bytes can hold")
  out = {}
  for key, t in tensors.items():
    st, storage = t.storage.stype, t.storage
    if storage.data is None:
      raise WeightsError(path, f"corrupt file: no data for storage {storage.key}")
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if t.numel and last >= storage.numel:
      raise WeightsError(path, f"corrupt file: tensor {key!r} reaches element {last} of a "
                               f"storage of {storage.numel}")
    dtype = np.dtype(st.dtype).newbyteorder("<" if little else ">")
    if not t.numel:
      arr = np.zeros(t.size, dtype)
    else:
      base = np.frombuffer(storage.data, dtype, count=storage.numel)
      view = np.lib.stride_tricks.as_strided(
          base[t.offset:], t.size, [s * st.itemsize for s in t.stride], writeable=False)
      arr = np.array(view, dtype.newbyteorder("="), order="C")
    if st.name == "BFloat16Storage":  # bfloat16 is the top half of a float32: widen exactly
      arr = (arr.astype(np.uint32) << 16).view(np.float32)
    elif st.name == "BoolStorage":
      arr = arr != 0
    out[key] = arr
  return out


def _read_zip(path, data: bytes) -> StateDict:
  size = len(data)
  with zipfile.ZipFile(io.BytesIO(data)) as zf:
    pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
      raise WeightsError(path, f"not a torch.save archive: {len(pkls)} '<name>/data.pkl' records")
    top = pkls[0][:-len("data.pkl")]

    def record(name: str, nbytes: int | None = None) -> bytes:
      try:
        info = zf.getinfo(top + name)
      except KeyError:
        raise WeightsError(path, f"corrupt archive: no record {top + name}") from None
      if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise WeightsError(path, f"unsupported: record {top + name} is compressed "
                                 "(torch.save stores records uncompressed)")
      if info.file_size > size or nbytes is not None and info.file_size != nbytes:
        raise WeightsError(path, f"corrupt archive: record {top + name} holds {info.file_size} "
                                 f"bytes, expected {nbytes}")
      return zf.read(info)

    little = True
    if top + "byteorder" in zf.namelist():
      order = record("byteorder")
      if order not in (b"little", b"big"):
        raise WeightsError(path, f"corrupt archive: unknown byte order {order[:16]!r}")
      little = order == b"little"
    storages = _Storages(path, legacy=False)
    obj, _ = _Unpickler(path, record("data.pkl"), 0, storages).load()
    tensors = _state_dict(path, obj)
    for s in storages.by_key.values():
      s.data = record(f"data/{s.key}", s.numel * s.stype.itemsize)
  return _to_arrays(path, tensors, little, size)


def _read_legacy(path, data: bytes) -> StateDict:
  """magic, protocol, sys_info, the state dict, storage keys; then each storage's count + bytes."""
  magic, pos = _Unpickler(path, data, 0).load()
  if magic != _LEGACY_MAGIC:
    raise WeightsError(path, "not a torch.save file (no magic number)")
  protocol, pos = _Unpickler(path, data, pos).load()
  if protocol != _LEGACY_PROTOCOL:
    raise WeightsError(path, f"unsupported torch.save protocol {protocol!r}")
  sys_info, pos = _Unpickler(path, data, pos).load()
  if type(sys_info) is not dict or type(sys_info.get("little_endian")) is not bool:
    raise WeightsError(path, "corrupt file: bad sys_info record")
  little = sys_info["little_endian"]
  storages = _Storages(path, legacy=True)
  obj, pos = _Unpickler(path, data, pos, storages).load()
  tensors = _state_dict(path, obj)
  keys, pos = _Unpickler(path, data, pos).load()
  if type(keys) is not list or not all(type(k) is str for k in keys):
    raise WeightsError(path, "corrupt file: bad list of storage keys")
  view = memoryview(data)
  for key in keys:
    s = storages.by_key.get(key)
    if s is None or s.data is not None:
      raise WeightsError(path, f"corrupt file: unexpected storage key {key!r}")
    if len(data) - pos < 8:
      raise WeightsError(path, f"truncated file: storage {key} is missing")
    numel = int.from_bytes(data[pos:pos + 8], "little" if little else "big", signed=True)
    nbytes = s.numel * s.stype.itemsize
    if numel != s.numel:
      raise WeightsError(path, f"corrupt file: storage {key} holds {numel} elements, "
                               f"expected {s.numel}")
    if nbytes > len(data) - pos - 8:
      raise WeightsError(path, f"truncated file: storage {key} is cut short")
    s.data = view[pos + 8:pos + 8 + nbytes]
    pos += 8 + nbytes
  return _to_arrays(path, tensors, little, len(data))


def read_torch_state_dict(path: str | os.PathLike) -> StateDict:
  """The arrays of a state dict saved by ``torch.save`` (zip or legacy layout), copied to numpy.

  bfloat16 tensors come back as float32 (exactly); bool tensors as bool.
  """
  return parse_torch_state_dict(read_weights_bytes(path), path)


def parse_torch_state_dict(data: bytes, path: str | os.PathLike | None = None) -> StateDict:
  """read_torch_state_dict of a file's bytes; ``path`` only names it in errors."""
  if data[:4] == b"PK\x03\x04":
    try:
      return _read_zip(path, data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, struct.error, UnicodeDecodeError) as e:
      raise WeightsError(path, f"corrupt archive: {e}") from None
  if data[:1] != b"\x80":
    raise WeightsError(path, "not a torch.save file (neither a zip archive nor a pickle)")
  return _read_legacy(path, data)
