"""What both networks' ONNX graphs are built from (adain.export.onnx_graph for AdaIN,
adain.export.onnx_microast for MicroAST): a node and weight collector, the ops the networks share
(reflection-padded convolution, pytorch-AdaIN's statistics), and the files' writing.

Graphs are NCHW inside (ONNX's layout for Conv), NHWC at their inputs and outputs as in adain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from adain.files import atomic_write
from adain.models import ops

OPSET = 18  # the first where ReduceMean, like ReduceSum, takes its axes as an input


class Graph:
  """Nodes and weights being collected; each op's output gets a fresh name unless given one."""

  def __init__(self):
    self.nodes, self.weights = [], {}

  def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
    out = out or f"{op_type.lower()}_{len(self.nodes)}"
    self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
    return out

  def const(self, name: str, value) -> str:
    """A named constant (a weight, a shared shape or scalar), stored once."""
    if name not in self.weights:
      self.weights[name] = numpy_helper.from_array(np.asarray(value), name)
    return name

  def model(self, name: str, io: dict, doc: str, props: dict[str, str]) -> onnx.ModelProto:
    """The checked model; ``io`` names its inputs and outputs and their (symbolic) shapes."""
    def infos(specs):
      return [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in specs.items()]

    graph = helper.make_graph(self.nodes, name, infos(io["inputs"]), infos(io["outputs"]),
                              list(self.weights.values()), doc_string=doc)
    opset = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opset, producer_name="adain",
                              ir_version=helper.find_min_ir_version_for(opset), doc_string=doc)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model


def axes_hw(g: Graph) -> str:
  return g.const("axes_hw", np.array([2, 3], np.int64))


def one(g: Graph) -> str:
  return g.const("one", np.float32(1))


def reflect_pad(g: Graph, x: str, p: int) -> str:
  return g.op("Pad", x, g.const(f"pads{p}", np.array([0, 0, p, p, 0, 0, p, p], np.int64)), mode="reflect")


def conv(g: Graph, x: str, name: str, weight_oihw: np.ndarray, bias: np.ndarray, stride: int = 1,
         groups: int = 1) -> str:
  """A reflection-padded (ksize // 2) VALID convolution, as both networks' ReflectConv layers;
  ``name`` names its weights (``name.weight``, ``name.bias``)."""
  ksize = weight_oihw.shape[-1]
  if ksize > 1:
    x = reflect_pad(g, x, ksize // 2)
  return g.op("Conv", x, g.const(f"{name}.weight", weight_oihw), g.const(f"{name}.bias", bias),
              kernel_shape=[ksize, ksize], strides=[stride, stride], group=groups)


def mean_std(g: Graph, x_nchw: str) -> tuple[str, str]:
  """ops.mean_std over H and W, kept as (N, C, 1, 1): unbiased variance, eps under the root."""
  axes = axes_hw(g)
  hw = g.op("Shape", x_nchw, start=2, end=4)
  n = g.op("Cast", g.op("ReduceProd", hw, keepdims=0), to=TensorProto.FLOAT)
  mean = g.op("ReduceMean", x_nchw, axes, keepdims=1)
  d = g.op("Sub", x_nchw, mean)
  var = g.op("Div", g.op("ReduceSum", g.op("Mul", d, d), axes, keepdims=1),
             g.op("Max", g.op("Sub", n, one(g)), one(g)))
  return mean, g.op("Sqrt", g.op("Add", var, g.const("eps", np.float32(ops.EPS))))


def adain(g: Graph, x_nchw: str, mean: str, std: str) -> str:
  """ops.adain in its order: x normalised by its own statistics, then scaled to (mean, std),
  both (N, C, 1, 1)."""
  x_mean, x_std = mean_std(g, x_nchw)
  normalized = g.op("Div", g.op("Sub", x_nchw, x_mean), x_std)
  return g.op("Add", g.op("Mul", normalized, std), mean)


def nhwc_to_nchw(g: Graph, x: str) -> str:
  return g.op("Transpose", x, perm=[0, 3, 1, 2])


def nchw_to_nhwc(g: Graph, x: str, out: str) -> str:
  return g.op("Transpose", x, out=out, perm=[0, 2, 3, 1])


def clip01(g: Graph, x: str) -> str:
  """[0, 1]: changes no saved pixel (adain rounds with clamp(x * 255 + 0.5, 0, 255), see
  images.to_uint8) and gives runtimes an image to show."""
  return g.op("Clip", x, g.const("zero", np.float32(0)), one(g))


def io_lines(io: dict) -> str:
  """A README's lines for a graph's inputs and outputs."""
  def dims(shape):
    return "scalar (a 0-d tensor)" if not shape else "[" + ", ".join(map(str, shape)) + "]"

  return "\n".join(f"    {kind[:-1]} {name}: float32 {dims(shape)}" for kind in ("inputs", "outputs")
                   for name, shape in io[kind].items())


def write_export(out_dir: str | os.PathLike, encoder: onnx.ModelProto, generator: onnx.ModelProto,
                 readme: str, spec: dict) -> list[Path]:
  """A network's export: encoder.onnx, generator.onnx, README.txt and models.json into out_dir,
  each under a temporary name, renamed once complete; their paths."""
  return write_files(out_dir, {
      "encoder.onnx": encoder.SerializeToString(),
      "generator.onnx": generator.SerializeToString(),
      "README.txt": readme.encode(),
      "models.json": (json.dumps(spec, indent=2) + "\n").encode(),
  })


def write_files(out_dir: str | os.PathLike, files: dict[str, bytes]) -> list[Path]:
  """Each file into out_dir under a temporary name, renamed once complete; their paths."""
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for name, data in files.items():
    with atomic_write(out_dir / name) as f:
      f.write(data)
  return [out_dir / name for name in files]
