"""read_torch_state_dict: exact arrays from torch.save files in both layouts, hostile files refused
without running anything, and damaged files answered with WeightsError, never another exception.

The good fixtures were written by torch.save itself (tools/make_weight_fixtures.py); mutated files
are built here with that script's byte-level writers, which need no torch.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from adain.errors import WeightsError
from conftest import weight_writers
from adain.weights.torch_pickle import parse_torch_state_dict, read_torch_state_dict

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "weights"


mk = weight_writers()

LAYOUTS = ("zip", "legacy")
W = np.arange(12, dtype="<f4")  # the storage of the hand-written files below


def expected(name: str) -> dict[str, np.ndarray]:
  with np.load(FIXTURES / f"{name}.npz") as z:
    return {k: z[k] for k in z.files}


def assert_exactly(got: dict, want: dict):
  assert list(got) == list(want)
  for k, w in want.items():
    assert got[k].dtype == w.dtype and got[k].shape == w.shape, k
    assert got[k].tobytes() == w.tobytes(), k


def load_bytes(data: bytes):
  return parse_torch_state_dict(data, "w.pth")


def hand_written(layout: str, numel=12, offset=0, size=(3, 4), stride=(4, 1),
                 stype="FloatStorage", rebuild="_rebuild_tensor_v2") -> bytes:
  """A one-tensor state dict {"w": ...} over the 12 floats W, with the given tensor record."""
  legacy = layout == "legacy"
  pkl = mk.p_state_dict([("w", mk.p_tensor(stype, "0", numel, offset, size, stride, legacy,
                                           rebuild))])
  return mk.contained(pkl, {"0": W.tobytes()}, legacy)


# --- what must load ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny_zip", "tiny_legacy", "tiny_bigendian", "mixed_zip",
                                  "mixed_legacy"])
def test_reads_torch_save_files_exactly(name):
  sd = read_torch_state_dict(FIXTURES / f"{name}.pth")
  assert_exactly(sd, expected(name.split("_")[0]))


def test_mixed_covers_views_dtypes_and_shapes():
  sd = read_torch_state_dict(FIXTURES / "mixed_zip.pth")
  base = np.arange(60, dtype=np.float32).reshape(6, 10)
  np.testing.assert_array_equal(sd["view.t"], base.T[2:5])
  np.testing.assert_array_equal(sd["view.row"], base[3, 2:7])
  np.testing.assert_array_equal(sd["view.step"], base[::2, 1::3])
  assert {k: v.dtype.name for k, v in sd.items() if k in ("f64", "f16", "bf16", "i64", "bool")} \
      == {"f64": "float64", "f16": "float16", "bf16": "float32", "i64": "int64", "bool": "bool"}
  assert sd["scalar"].shape == () and sd["scalar"] == 2.5 and sd["empty"].shape == (0, 3)
  assert sd["view.t"].flags.writeable and sd["view.t"].flags.c_contiguous  # copies, not views
  sd["base"][:] = -1
  assert sd["view.row"][0] == 32


def test_zip_top_folder_is_found_not_assumed():
  with zipfile.ZipFile(FIXTURES / "tiny_zip.pth") as z:
    assert {n.split("/")[0] for n in z.namelist()} == {"tiny_zip"}
    pkl = z.read("tiny_zip/data.pkl")
    storages = {n.split("/")[-1]: z.read(n) for n in z.namelist() if "/data/" in n}
  sd = load_bytes(mk.zip_file(pkl, storages, top="any name"))
  assert_exactly(sd, expected("tiny"))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("rebuild", ["_rebuild_tensor_v2", "_rebuild_tensor"])
def test_hand_written_files_load(layout, rebuild):
  """The writer used for the mutations below makes files that load, so refusals are meaningful."""
  sd = load_bytes(hand_written(layout, offset=1, size=(2, 3), stride=(1, 2),
                                         rebuild=rebuild))
  assert_exactly(sd, {"w": W[1:].reshape(-1)[[[0, 2, 4], [1, 3, 5]]]})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_python2_ordered_dict_pickle_loads(layout):
  """Python 2 pickled OrderedDict as OrderedDict([[key, value], ...])."""
  legacy = layout == "legacy"
  tensor = mk.p_tensor("FloatStorage", "0", 12, 0, (12,), (1,), legacy)
  pairs = b"((" + mk.p_str("w") + tensor + b"ll"
  pkl = mk.PROTO2 + mk.p_global("collections", "OrderedDict") + mk.p_tuple(pairs) + b"R" + mk.STOP
  assert_exactly(load_bytes(mk.contained(pkl, {"0": W.tobytes()}, legacy)), {"w": W})


# --- what must be refused ------------------------------------------------------------------------

HOSTILE = {
    "reduce_system": "posix.system",
    "reduce_exec_p4": "builtins.exec",
    "stack_global_system": "os.system",
    "whole_model": "torch.nn.modules.conv.Conv2d",
    "global_torch_load": "torch.load",
    "global_getattr": "builtins.getattr",
    "newobj": "opcode NEWOBJ ",
    "newobj_ex": "opcode NEWOBJ_EX",
    "inst": "opcode INST",
    "obj": "opcode OBJ",
    "ext": "opcode EXT1",
    "build_class": "BUILD .* on collections.OrderedDict",
    "build_tensor": "BUILD .* on a tensor",
    "build_slots": "BUILD .* of a tuple",
    "reduce_storage": "calls torch.FloatStorage",
    "pid_module": "persistent id of kind 'module'",
    "pid_traversal": "bad storage key",
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_refused_without_running(tmp_path, monkeypatch, name, layout):
  monkeypatch.chdir(tmp_path)  # where the payloads would drop their marker
  path = FIXTURES / f"evil_{name}_{layout}.pth"
  with pytest.raises(WeightsError, match=HOSTILE[name]) as e:
    read_torch_state_dict(path)
  assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
  assert not (tmp_path / mk.MARKER).exists()


def test_reader_never_uses_pickle_or_torch():
  source = (ROOT / "adain" / "weights" / "torch_pickle.py").read_text()
  for banned in ("import pickle", "pickle.load(", "import torch", "from torch", "eval(", "exec("):
    assert banned not in source


@pytest.mark.parametrize("data, problem", [
    (b"", "not a torch.save file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(32), "not a torch.save file"),
    (b"PK\x03\x04" + bytes(40), "corrupt archive"),
    (mk.legacy_file(mk.p_state_dict([]), [])[:0] + b"\x80\x02K\x07.", "no magic number"),
])
def test_other_files_are_refused(data, problem):
  with pytest.raises(WeightsError, match=problem):
    load_bytes(data)


def test_missing_file(tmp_path):
  with pytest.raises(WeightsError, match="cannot read"):
    read_torch_state_dict(tmp_path / "absent.pth")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("record, problem", [
    (dict(size=(4, 4)), "reaches element 15 of a storage of 12"),
    (dict(stride=(5, 1)), "reaches element 13"),
    (dict(offset=1), "reaches element 12"),
    (dict(offset=12, size=(), stride=()), "reaches element 12"),
    (dict(size=(2**40,), stride=(0,)), "claim 1099511627776 elements"),
    (dict(size=(0, 2**61), stride=(1, 1)), "claim"),
    (dict(stride=(4, -1)), "bad tensor size or stride"),
    (dict(size=(-3, 4)), "bad tensor size or stride"),
    (dict(offset=-1), "bad tensor storage offset"),
    (dict(size=(12,) + (1,) * 64, stride=(1,) * 65), "bad tensor size or stride"),
    (dict(size=(3, 4, 1)), "differ in length"),
    (dict(numel=13), "holds 48 bytes, expected 52|holds 12 elements, expected 13"),
    (dict(numel=2**61), "bad size|expected"),
    (dict(stype="DoubleStorage"), "expected 96|storage 0 is cut short"),
    (dict(stype="QInt8Storage"), "torch.QInt8Storage"),
    (dict(rebuild="_rebuild_qtensor"), "torch._utils._rebuild_qtensor"),
])
def test_bad_tensor_records_are_refused(layout, record, problem):
  with pytest.raises(WeightsError, match=problem):
    load_bytes(hand_written(layout, **record))


def test_legacy_storage_shorter_than_declared():
  pkl = mk.p_state_dict([("w", mk.p_tensor("FloatStorage", "0", 12, 0, (12,), (1,), True))])
  with pytest.raises(WeightsError, match="storage 0 is cut short"):
    load_bytes(mk.legacy_file(pkl, [("0", 12, W.tobytes()[:40])]))


def test_compressed_records_are_refused(tmp_path):
  path = tmp_path / "deflated.pth"
  with zipfile.ZipFile(FIXTURES / "tiny_zip.pth") as zin, \
       zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
      zout.writestr(info.filename, zin.read(info))
  with pytest.raises(WeightsError, match="compressed"):
    read_torch_state_dict(path)


# --- damaged files -------------------------------------------------------------------------------


def load_or_refuse(data: bytes):
  """A damaged file either still parses into arrays or is refused with WeightsError."""
  try:
    sd = load_bytes(data)
  except WeightsError as e:
    assert "\n" not in str(e)
    return None
  assert all(isinstance(v, np.ndarray) for v in sd.values())
  return sd


def tiny_zip_parts() -> tuple[bytes, dict[str, bytes]]:
  with zipfile.ZipFile(FIXTURES / "tiny_zip.pth") as z:
    storages = {n.split("/")[-1]: z.read(n) for n in z.namelist() if "/data/" in n}
    return z.read("tiny_zip/data.pkl"), storages


@pytest.mark.parametrize("name", ["tiny_legacy", "tiny_zip"])
def test_truncation_at_every_byte(name):
  data = (FIXTURES / f"{name}.pth").read_bytes()
  for n in range(len(data)):
    with pytest.raises(WeightsError):
      load_bytes(data[:n])


def test_truncated_pickle_inside_a_valid_zip():
  pkl, storages = tiny_zip_parts()
  for n in range(len(pkl)):
    with pytest.raises(WeightsError):
      load_bytes(mk.zip_file(pkl[:n], storages))


def test_flipped_bits():
  """Seeded single-bit flips, in the files and in a zip's pickle (re-zipped so CRCs match)."""
  rng = np.random.default_rng(0)
  pkl, storages = tiny_zip_parts()
  refused = 0
  for name in ("tiny_legacy", "mixed_legacy", "tiny_zip", "data.pkl"):
    data = pkl if name == "data.pkl" else (FIXTURES / f"{name}.pth").read_bytes()
    for pos in rng.choice(len(data), size=min(len(data), 150), replace=False):
      mutated = bytearray(data)
      mutated[pos] ^= 1 << int(rng.integers(8))
      mutated = bytes(mutated)
      if name == "data.pkl":
        mutated = mk.zip_file(mutated, storages)
      refused += load_or_refuse(mutated) is None
  assert refused > 100  # most flips outside raw tensor data must be caught


def test_random_byte_runs_in_the_pickle():
  """Overwritten runs of random bytes exercise opcodes no flip of a valid pickle reaches."""
  rng = np.random.default_rng(1)
  data = (FIXTURES / "mixed_legacy.pth").read_bytes()
  for _ in range(200):
    pos, n = int(rng.integers(len(data) - 16)), int(rng.integers(1, 16))
    mutated = data[:pos] + rng.bytes(n) + data[pos + n:]
    load_or_refuse(mutated)
