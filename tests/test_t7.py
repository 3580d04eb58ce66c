"""read_t7_state_dict: exact weights from a Torch7 nn.Sequential, keyed by module position, and
WeightsError (never a crash) for hostile or damaged files.

tests/fixtures/weights/tiny.t7 comes from the writer in tools/make_weight_fixtures.py, checked
there against torchfile; the mutated files here are built with the same writer.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from adain.errors import WeightsError
from conftest import weight_writers
from adain.weights.t7 import parse_t7_state_dict, read_t7_state_dict

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "weights"


mk = weight_writers()
B = np.array([0.5, -1.5], np.float32)


def expected() -> dict[str, np.ndarray]:
  with np.load(FIXTURES / "tiny_t7.npz") as z:
    return {k: z[k] for k in z.files}


def parse(obj) -> dict[str, np.ndarray]:
  return parse_t7_state_dict(mk.t7_bytes(obj), "w.t7")


def one_conv(weight, n_in=1, k=1, cls="nn.SpatialConvolution", **fields):
  """Sequential(ReLU, conv(n_in -> 2, k x k)): the conv is module 1."""
  conv = mk.t7_conv(weight, mk.t7_tensor(B), 2, n_in, k, cls=cls)
  conv.fields.update(fields)
  return mk.t7_sequential([mk.t7_module("nn.ReLU"), conv])


def test_reads_the_fixture_exactly():
  got, want = read_t7_state_dict(FIXTURES / "tiny.t7"), expected()
  assert sorted(got) == sorted(want) == ["0.bias", "0.weight", "2.bias", "2.weight", "6.bias",
                                         "6.weight", "7.bias", "7.weight"]
  for k, w in want.items():
    assert got[k].dtype == w.dtype and got[k].shape == w.shape, k
    assert got[k].tobytes() == w.tobytes(), k
    assert got[k].flags.c_contiguous and got[k].flags.writeable


def test_layouts():
  """4-D and old 2-D weights, a strided view into a shared storage, unversioned records."""
  w = np.arange(18, dtype=np.float32).reshape(2, 1, 3, 3)
  for weight in (mk.t7_tensor(w), mk.t7_tensor(w.reshape(2, 9))):
    np.testing.assert_array_equal(parse(one_conv(weight, k=3))["1.weight"], w)
  storage = mk.T7Storage("torch.FloatStorage", np.arange(20, dtype=np.float32))
  view = mk.T7Tensor("torch.FloatTensor", (2, 1, 3, 3), (1, 1, 6, 2), 3, storage)
  seq = one_conv(view, k=3)
  seq.versioned = False
  want = np.arange(20, dtype=np.float32)[2:][[[[[i + 6 * y + 2 * x for x in range(3)]
                                               for y in range(3)]] for i in range(2)]]
  sd = parse(seq)
  np.testing.assert_array_equal(sd["1.weight"], want)
  np.testing.assert_array_equal(sd["1.bias"], B)


def test_missing_file(tmp_path):
  with pytest.raises(WeightsError, match="cannot read"):
    read_t7_state_dict(tmp_path / "absent.t7")


HOSTILE = {
    "function": "Lua function",
    "self_ref_sequential": "nested container",
    "self_ref_tensor": "refers to itself",
    "huge_string": "string length of 2147483647",
    "huge_table": "table size of 2147483647",
    "huge_storage": "torch.FloatStorage size of 1152921504606846976",
    "huge_ndim": "1073741824 dimensions",
    "out_of_bounds": "reaches element 17 of a storage of 10",
    "deep": "nested deeper than 64",
    "bad_tag": "type tag 42",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_refused(name):
  path = FIXTURES / f"evil_{name}.t7"
  with pytest.raises(WeightsError, match=HOSTILE[name]) as e:
    read_t7_state_dict(path)
  assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def _tensor(size, stride, offset=1, storage_cls="torch.FloatStorage", numel=20,
            cls="torch.FloatTensor"):
  dtype = np.float64 if "Double" in storage_cls else np.float32
  return mk.T7Tensor(cls, size, stride, offset,
                     mk.T7Storage(storage_cls, np.zeros(numel, dtype)))


@pytest.mark.parametrize("seq, problem", [
    (one_conv(_tensor((2, 1, 3, 3), (9, 9, 3, 1), numel=17)), "reaches element 17 of a storage"),
    (one_conv(_tensor((2, 1, 1, 1), (1, 1, 1, 1), offset=20)), "reaches element 20"),
    (one_conv(_tensor((2, 1, 1, 1), (1, 1, 1, 1), offset=0)), "negative size, stride or offset"),
    (one_conv(_tensor((2, 1, 1, 1), (-1, 1, 1, 1), offset=5)), "negative size, stride"),
    (one_conv(_tensor((-2, 1, 1, 1), (1, 1, 1, 1))), "negative size"),
    (one_conv(_tensor((2**40, 1, 1, 1), (0, 0, 0, 0))), "larger than the file"),
    (one_conv(_tensor((2, 1, 1, 1), (1, 1, 1, 1), storage_cls="torch.DoubleStorage")),
     "without a storage of its type"),
    (one_conv(mk.T7Tensor("torch.FloatTensor", (2, 1, 1, 1), (1, 1, 1, 1), 1, None)),
     "without a storage"),
    (one_conv(mk.T7Tensor("torch.FloatTensor", (2,), (1,), 1, {})), "storage is a dict"),
    (one_conv(mk.t7_tensor(np.zeros((2, 9), np.float32)), n_in=2, k=3), "does not fit"),
    (one_conv(mk.t7_tensor(np.zeros((2, 1, 1, 1), np.float32)), kH=1.5), "bad kH"),
    (one_conv(mk.t7_tensor(np.zeros((2, 1, 1, 1), np.float32)), nInputPlane="1"),
     "bad nInputPlane"),
    (one_conv("weights"), "weight is not a tensor"),
    (mk.t7_sequential([]), "no module with weights"),
    (mk.t7_sequential([mk.t7_sequential([])]), "nested container"),
    (mk.t7_sequential([3.0]), "module 0 is not a Torch module"),
    (mk.t7_module("nn.Sequential", modules={1: mk.t7_module("nn.ReLU"), 3: 1.0}),
     "not numbered 1..n"),
    (mk.t7_module("nn.ReLU"), "not a Torch7 nn.Sequential: the file holds a nn.ReLU"),
    ({"modules": {}}, "the file holds a dict"),
    (mk.t7_module("nn.Sequential", modules={mk.T7Raw(struct.pack("<iii", 3, 99, 0)): 1}),
     "table key of type dict"),
])
def test_bad_records_are_refused(seq, problem):
  with pytest.raises(WeightsError, match=problem):
    parse(seq)


def load_or_refuse(data: bytes):
  try:
    sd = parse_t7_state_dict(data, "w.t7")
  except WeightsError as e:
    assert "\n" not in str(e)
    return None
  assert all(isinstance(v, np.ndarray) for v in sd.values())
  return sd


def test_truncation_at_every_byte():
  data = mk.t7_bytes(one_conv(mk.t7_tensor(np.ones((2, 1, 1, 1), np.float32))))
  assert sorted(parse_t7_state_dict(data)) == ["1.bias", "1.weight"]
  for n in range(len(data)):
    with pytest.raises(WeightsError):
      parse_t7_state_dict(data[:n], "w.t7")


def test_flipped_bits_and_overwritten_ints():
  """Seeded damage: single-bit flips, and 4-byte fields set to extreme values."""
  rng = np.random.default_rng(0)
  data = (FIXTURES / "tiny.t7").read_bytes()
  refused = 0
  for pos in rng.choice(len(data), size=400, replace=False):
    mutated = bytearray(data)
    mutated[pos] ^= 1 << int(rng.integers(8))
    refused += load_or_refuse(bytes(mutated)) is None
  for pos in rng.choice(len(data) - 4, size=300, replace=False):
    value = int(rng.choice([-1, 0, 2**31 - 1, -2**31, 1, 64]))
    refused += load_or_refuse(data[:pos] + struct.pack("<i", value) + data[pos + 4:]) is None
  assert refused > 200
