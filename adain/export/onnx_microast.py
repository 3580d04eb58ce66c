"""MicroAST as two ONNX graphs, the same content-code / style-code split as AdaIN's
(adain.export.onnx_graph), built from its layer tables (adain.models.microast.architecture) and
its four state dicts (weights.state_dicts_of).

``encoder.onnx``: image -> content code (the content encoder's level-2 features) and style code
(MicroASTCode's 8 fields: the style encoder's statistics at both levels and the modulator's
scales). ``generator.onnx``: content code, a style code, the content's own code and alpha ->
image. alpha is adain's (MicroASTCode.interpolate): the style's code blended field by field with
the content's own code (encoder.onnx's code of the content image), then the published decoder.
The content's code fields come out of the same encoder run as its content code.

The ops are network.py's: reflection padding then a VALID (strided, grouped) Conv everywhere,
pytorch-AdaIN's statistics, and torch's bilinear 2x upsampling (align_corners False) as Resize
with half_pixel coordinates. The output is clipped to [0, 1] as AdaIN's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from adain.export import onnx_builder as ob
from adain.export.onnx_builder import OPSET
from adain.models.microast import architecture as arch
from adain.models.microast.codes import FIELDS
from adain.models.microast.network import MicroAST
from adain.models.microast.weights import state_dicts_of

FORMAT = "adain-microast-onnx/1"
C = arch.CHANNELS
OWN = tuple(f"own_{f}" for f in FIELDS)

# Names and shapes of the graphs' inputs and outputs (ONNX symbolic dims as strings): the code
# fields keep MicroASTCode's names, so that a saved code (.npz) feeds the generator as it is.
ENCODER_IO = {
    "inputs": {"image": ["N", "H", "W", 3]},
    "outputs": {"content": ["N", "h", "w", C], **{f: ["N", C] for f in FIELDS}},
}
GENERATOR_IO = {
    "inputs": {"content": ["N", "h", "w", C], **{f: ["S", C] for f in FIELDS},
               **{f: ["N", C] for f in OWN}, "alpha": []},
    "outputs": {"image": ["N", "4h", "4w", 3]},
}
CROP_RULE = ("h = ceil(ceil(H/2)/2), w = ceil(ceil(W/2)/2) (two stride-2 convs); the generator's "
             "image is 4h x 4w: crop its top-left H x W to get the picture of an H x W input")
PROPS = {"format": FORMAT, "crop": CROP_RULE}
# Where each generator input comes from (see onnx_graph.FEEDS): the style's code, and the
# content's own code from the content image's run.
FEEDS = {"content": ["content", "content"], **{f: ["style", f] for f in FIELDS},
         **{o: ["content", f] for o, f in zip(OWN, FIELDS)}}


def _conv(g: ob.Graph, x: str, sd: dict[str, np.ndarray], part: str, conv: arch.Conv) -> str:
  """One table conv of ``part`` (its state dict ``sd``), weights named part/state-dict-name."""
  return ob.conv(g, x, f"{part}/{conv.name}", sd[f"{conv.name}.weight"], sd[f"{conv.name}.bias"],
                 conv.stride, conv.groups)


def _residual(g: ob.Graph, x: str, sd, part: str, convs, w: str | None = None,
              b: str | None = None) -> str:
  """network.Residual: x + conv2(relu(conv1(x))); with the style's scales w, b (N, C, 1, 1)
  each conv's output is w * conv(h) + b * h, in network.py's order."""
  conv1, conv2 = convs
  if w is None:
    return g.op("Add", x, _conv(g, g.op("Relu", _conv(g, x, sd, part, conv1)), sd, part, conv2))
  h = g.op("Relu", g.op("Add", g.op("Mul", w, _conv(g, x, sd, part, conv1)), g.op("Mul", b, x)))
  return g.op("Add", g.op("Add", x, g.op("Mul", w, _conv(g, h, sd, part, conv2))), g.op("Mul", b, h))


def _encoder(g: ob.Graph, x: str, sd, part: str) -> tuple[str, str]:
  """network.Encoder: (level 1, level 2) of an NCHW image."""
  for conv in arch.ENCODER_STEM:
    x = g.op("Relu", _conv(g, x, sd, part, conv))
  level1 = _residual(g, x, sd, part, arch.ENCODER_RES1)
  return level1, _residual(g, level1, sd, part, arch.ENCODER_RES2)


def upsample_bilinear2x(g: ob.Graph, x: str) -> str:
  """network.upsample_bilinear2x, torch's bilinear with align_corners False: output i samples
  input (i + 0.5) / 2 - 0.5, clamped to the edge, as Resize's half_pixel coordinates."""
  return g.op("Resize", x, "", g.const("scales2x", np.array([1, 1, 2, 2], np.float32)),
              mode="linear", coordinate_transformation_mode="half_pixel")


def encoder_model(model: MicroAST) -> onnx.ModelProto:
  """image (N, H, W, 3) in [0, 1] -> content (N, h, w, 64) and the 8 code fields (N, 64)."""
  sds = state_dicts_of(model)
  g = ob.Graph()
  x = ob.nhwc_to_nchw(g, "image")
  ob.nchw_to_nhwc(g, _encoder(g, x, sds["content_encoder"], "content_encoder")[1], "content")
  levels = _encoder(g, x, sds["style_encoder"], "style_encoder")
  code, modulator = {}, iter(arch.MODULATOR_CONVS)  # weight1, bias1, weight2, bias2
  for level, feats in zip((1, 2), levels):
    code[f"mean{level}"], code[f"std{level}"] = ob.mean_std(g, feats)
    for kind in ("w", "b"):  # network.Modulator: a depthwise conv, averaged
      pooled = _conv(g, feats, sds["modulator"], "modulator", next(modulator))
      code[f"{kind}{level}"] = g.op("ReduceMean", pooled, ob.axes_hw(g), keepdims=1)
  for f in FIELDS:
    g.op("Squeeze", code[f], ob.axes_hw(g), out=f)
  return g.model("microast_encoder", ENCODER_IO, "MicroAST encoder: the content encoder's level-2 "
                 "features, and the style code (style encoder statistics, modulator scales) of "
                 "each image", PROPS)


def generator_model(model: MicroAST) -> onnx.ModelProto:
  """content, the style's code, the content's own code, alpha -> image (N, 4h, 4w, 3) in
  [0, 1], before the crop."""
  sd = state_dicts_of(model)["decoder"]
  g = ob.Graph()
  rest = g.op("Sub", ob.one(g), "alpha")
  code = {f: g.op("Unsqueeze", g.op("Add", g.op("Mul", "alpha", f), g.op("Mul", rest, own)), ob.axes_hw(g))
          for f, own in zip(FIELDS, OWN)}  # MicroASTCode.interpolate, as (N, C, 1, 1)
  x = ob.adain(g, ob.nhwc_to_nchw(g, "content"), code["mean2"], code["std2"])
  x = _residual(g, x, sd, "decoder", arch.DECODER_RES1, code["w2"], code["b2"])
  x = ob.adain(g, x, code["mean1"], code["std1"])
  x = _residual(g, x, sd, "decoder", arch.DECODER_RES2, code["w1"], code["b1"])
  for conv, upsample in arch.DECODER_UP:
    if upsample:
      x = upsample_bilinear2x(g, x)
    x = g.op("Relu", _conv(g, x, sd, "decoder", conv))
  x = _conv(g, x, sd, "decoder", arch.DECODER_OUT)
  ob.nchw_to_nhwc(g, ob.clip01(g, x), "image")
  return g.model("microast_generator", GENERATOR_IO, "MicroAST generator: the style code blended "
                 "with the content's own code by alpha, then the modulated decoder on the content "
                 "code, to RGB", PROPS)


def spec() -> dict:
  """models.json: what each file takes and gives, where the generator's inputs come from, and
  the crop rule."""
  return {
      "format": FORMAT, "network": "microast", "opset": OPSET, "layout": "NHWC, float32",
      "min_side": arch.MIN_SIDE, "crop": CROP_RULE,
      "encoder": {"file": "encoder.onnx", **ENCODER_IO},
      "generator": {"file": "generator.onnx", **GENERATOR_IO, "feeds": FEEDS},
      "style_code_npz": "adain's .npz MicroAST codes (MicroASTCode.save) hold arrays "
                        f"{', '.join(FIELDS)} of shape (1, {C}): feed them as the generator's "
                        "inputs of those names",
  }


def readme() -> str:
  return f"""\
MicroAST (real-time arbitrary style transfer, Wang et al. 2023) from adain, exported to ONNX (opset {OPSET}).
All tensors are float32, NHWC. N, H, W are symbolic: any batch, any size of {arch.MIN_SIDE} px a side and up.

encoder.onnx: an RGB image in [0, 1] to its content code (the content encoder's level-2 features)
and its style code (the style encoder's mean and std at levels 1 and 2, the modulator's w and b)
{ob.io_lines(ENCODER_IO)}
generator.onnx: the style code blended with the content's own code by alpha (field by field:
alpha * style + (1 - alpha) * own; 0 = content, 1 = full style), then the decoder on the content
code; the image is in [0, 1]
{ob.io_lines(GENERATOR_IO)}
    own_*: the content image's own code, encoder.onnx's mean1 ... b2 from the same run that gave
    its content code. At alpha 1 they do not change the image (feed the style's code then).
    The style code holds one code for the whole batch (S = 1) or one per image (S = N).

Crop: {CROP_RULE}.
To save as adain does: uint8(clip(x * 255 + 0.5, 0, 255)).

Style codes: encode a style image once and reuse it. Mixing styles: a weighted average of codes
(weights summing to 1), field by field, as adain's --style-weights. adain's .npz MicroAST codes
(MicroASTCode.save) hold arrays {", ".join(FIELDS)} of shape (1, {C}): feed them directly.
models.json says the same for programs.
"""


def write(model: MicroAST, out_dir: str | os.PathLike) -> list[Path]:
  """Writes encoder.onnx, generator.onnx, README.txt and models.json into out_dir (each under a
  temporary name, renamed once complete); returns their paths."""
  return ob.write_export(out_dir, encoder_model(model), generator_model(model), readme(), spec())
