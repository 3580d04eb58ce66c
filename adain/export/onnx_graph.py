"""The AdaIN network as two ONNX graphs, built with the ``onnx`` package from the model's own
layer tables (adain.models.adain.architecture.ENCODER_LAYERS, DECODER_LAYERS) and weights.

``encoder.onnx``: image -> content code and style code; ``generator.onnx``: content code, style
code and alpha -> image (AdaIN, the alpha blend, the decoder). The content-code / style-code
split is the model's: a style is encoded once and drives any number of contents. Inputs and
outputs are NHWC as in adain; inside, the graphs are NCHW, ONNX's layout for Conv and pooling.
Batch and image sizes are symbolic, so one file serves every size of 16 pixels a side and up.

The ops are the model's (adain.models.ops, pytorch-AdaIN's net.py): reflection padding, ceil-mode max
pooling (as a padded floor-mode MaxPool, which every onnxruntime backend runs), statistics with
the unbiased variance plus eps under the square root (ops.mean_std), and the decoder's upsampling
layers computed as ops.upsample_conv does, a 2x2 convolution of the four output phases
(1.05-1.13x faster in ONNX Runtime than Resize, Pad and a 3x3 Conv). The output is clipped to
[0, 1]: that changes no saved pixel (adain rounds with ``clamp(x * 255 + 0.5, 0, 255)``, see
images.to_uint8) and gives runtimes an image to show.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from adain.errors import AdainError
from adain.export import onnx_builder as ob
from adain.export.onnx_builder import OPSET
from adain.models import ops
from adain.models.adain.architecture import (
  DECODER_LAYERS,
  ENCODER_LAYERS,
  MIN_SIDE,
  Variant,
)
from adain.models.adain.network import AdaIN
from adain.models.adain.weights import decoder_state_dict, encoder_state_dict

FORMAT = "adain-onnx/1"
CHANNELS = ENCODER_LAYERS[-1].cout

# Names and shapes of the graphs' inputs and outputs (ONNX symbolic dims as strings). The style
# code's batch S is its own symbol: one code (S = 1) styles a batch of N contents, or one per image.
ENCODER_IO = {
    "inputs": {"image": ["N", "H", "W", 3]},
    "outputs": {"content": ["N", "h", "w", CHANNELS], "style_mean": ["N", CHANNELS],
                "style_std": ["N", CHANNELS]},
}
GENERATOR_IO = {
    "inputs": {"content": ["N", "h", "w", CHANNELS], "style_mean": ["S", CHANNELS],
               "style_std": ["S", CHANNELS], "alpha": []},
    "outputs": {"image": ["N", "8h", "8w", 3]},
}
CROP_RULE = ("h = ceil(H/8), w = ceil(W/8) (three ceil-mode 2x2 poolings); the generator's "
             "image is 8h x 8w: crop its top-left H x W to get the picture of an H x W input")
PROPS = {"format": FORMAT, "crop": CROP_RULE}
# Where each generator input comes from: [the content or the style image, its encoder.onnx
# output] (alpha is the user's). The page feeds both networks' generators by this table.
FEEDS = {"content": ["content", "content"], "style_mean": ["style", "style_mean"],
         "style_std": ["style", "style_std"]}


def check_exportable(variant: Variant, path: str | os.PathLike | None = None) -> None:
  """Only the paper's decoder exports: an ablation's would need another graph and inputs."""
  if variant != Variant():
    raise AdainError(path, f"is a {variant.name} ablation decoder, which does not export to ONNX: "
                     "only the paper's decoder (variant adain) exports, not concat, bn_decoder "
                     "or in_decoder")


def _conv(g: ob.Graph, x: str, sd: dict[str, np.ndarray], torch_index: int) -> str:
  """One of the model's ReflectConv layers, from its OIHW state dict arrays."""
  return ob.conv(g, x, f"conv{torch_index}", sd[f"{torch_index}.weight"], sd[f"{torch_index}.bias"])


def _upsample_conv(g: ob.Graph, x: str, sd: dict[str, np.ndarray], torch_index: int) -> str:
  """Nearest 2x upsampling, reflection padding and a 3x3 convolution as the model computes them
  (ops.upsample_conv): one 2x2 convolution of the edge-padded input gives the four output phases
  as channel blocks, interleaved (DepthToSpace) and cropped by 1. 4/9 of the multiply-adds."""
  k = np.asarray(ops.phase_kernel(np.transpose(sd[f"{torch_index}.weight"], (2, 3, 1, 0))))
  cin, cout = k.shape[2], k.shape[3] // 4
  # DepthToSpace (DCR) puts channel block (i, j) at row 2y + i, column 2x + j: phase (1 - i, 1 - j)
  # in ops.interleave_phases' layout.
  k = k.reshape(2, 2, cin, 2, 2, cout)[:, :, :, ::-1, ::-1].reshape(2, 2, cin, 4 * cout)
  w = g.const(f"conv{torch_index}.weight", np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1))))
  bias = g.const(f"conv{torch_index}.bias", np.tile(sd[f"{torch_index}.bias"], 4))
  x = g.op("Pad", x, g.const("edge_pads1", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)), mode="edge")
  x = g.op("DepthToSpace", g.op("Conv", x, w, bias, kernel_shape=[2, 2]), blocksize=2, mode="DCR")
  return g.op("Slice", x, g.const("crop_starts", np.array([1, 1], np.int64)),
              g.const("crop_ends", np.array([-1, -1], np.int64)), ob.axes_hw(g))


def _max_pool_ceil(g: ob.Graph, x: str) -> str:
  """ops.max_pool_ceil (2x2, stride 2, ceil mode: an odd last row/column is pooled alone) as a
  floor-mode MaxPool padded by one at the bottom and right: MaxPool's pads never win a max (as
  the model's -inf), and an even size's pad row/column falls outside every window. Not
  ceil_mode=1, which onnxruntime-web's WebGPU MaxPool cannot run."""
  return g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])


def encoder_model(model: AdaIN) -> onnx.ModelProto:
  """image (N, H, W, 3) in [0, 1] -> content (N, h, w, 512), style_mean, style_std (N, 512)."""
  sd = encoder_state_dict(model)
  g = ob.Graph()
  x = ob.nhwc_to_nchw(g, "image")
  for layer in ENCODER_LAYERS:
    if layer.pool_before:
      x = _max_pool_ceil(g, x)
    x = _conv(g, x, sd, layer.torch_index)
    if layer.torch_index:  # every layer but the 1x1 colour conv has a ReLU
      x = g.op("Relu", x)
  ob.nchw_to_nhwc(g, x, "content")
  mean, std = ob.mean_std(g, x)
  g.op("Squeeze", mean, ob.axes_hw(g), out="style_mean")
  g.op("Squeeze", std, ob.axes_hw(g), out="style_std")
  return g.model("adain_encoder", ENCODER_IO, "adain encoder: normalised VGG-19 to relu4_1 and "
                 "the style code (per-channel mean, std) of each image", PROPS)


def generator_model(model: AdaIN) -> onnx.ModelProto:
  """content, style_mean, style_std, alpha -> image (N, 8h, 8w, 3) in [0, 1], before the crop."""
  check_exportable(model.variant)
  sd = decoder_state_dict(model)
  g = ob.Graph()
  c = ob.nhwc_to_nchw(g, "content")
  s_mean, s_std = (g.op("Unsqueeze", s, ob.axes_hw(g)) for s in ("style_mean", "style_std"))
  target = ob.adain(g, c, s_mean, s_std)
  x = g.op("Add", g.op("Mul", "alpha", target), g.op("Mul", g.op("Sub", ob.one(g), "alpha"), c))
  for layer in DECODER_LAYERS:
    x = (_upsample_conv if layer.upsample_before else _conv)(g, x, sd, layer.torch_index)
    if layer.relu:
      x = g.op("Relu", x)
  ob.nchw_to_nhwc(g, ob.clip01(g, x), "image")
  return g.model("adain_generator", GENERATOR_IO, "adain generator: AdaIN of the content code to "
                 "the style code, blended with the content code by alpha, decoded to RGB", PROPS)


def spec(variant: Variant) -> dict:
  """models.json: what each file takes and gives, and the crop rule."""
  return {
      "format": FORMAT, "network": "adain", "opset": OPSET, "variant": variant.name,
      "layout": "NHWC, float32", "min_side": MIN_SIDE, "crop": CROP_RULE,
      "encoder": {"file": "encoder.onnx", **ENCODER_IO},
      "generator": {"file": "generator.onnx", **GENERATOR_IO, "feeds": FEEDS},
      "style_code_npz": "adain's .npz style codes (python -m adain.encode_style) hold arrays "
                        "'mean' and 'std' of shape (1, 512): feed them as style_mean, style_std",
  }


def readme(variant: Variant) -> str:
  return f"""\
adain (arbitrary style transfer with AdaIN), exported to ONNX (opset {OPSET}); decoder: {variant.name}.
All tensors are float32, NHWC. N, H, W are symbolic: any batch, any size of {MIN_SIDE} px a side and up.

encoder.onnx: an RGB image in [0, 1] to its content code (relu4_1) and its style code
{ob.io_lines(ENCODER_IO)}
generator.onnx: AdaIN of the content code to the style code, mixed with the content code by alpha
(0 = content, 1 = full style), then decoded; the image is in [0, 1]
{ob.io_lines(GENERATOR_IO)}
    style_mean/style_std hold one code for the whole batch (S = 1) or one per image (S = N).

Crop: {CROP_RULE}.
To save as adain does: uint8(clip(x * 255 + 0.5, 0, 255)).

Style codes: encode a style image once (encoder.onnx's style_mean, style_std) and reuse it.
Mixing styles: a weighted average of codes (weights summing to 1) is exactly adain's
--style-weights. adain's .npz style codes (python -m adain.encode_style) hold arrays "mean" and
"std" of shape (1, 512): feed them directly as style_mean and style_std.
models.json says the same for programs.
"""


def write(model: AdaIN, out_dir: str | os.PathLike) -> list[Path]:
  """Writes encoder.onnx, generator.onnx, README.txt and models.json into out_dir (each under a
  temporary name, renamed once complete); returns their paths."""
  return ob.write_export(out_dir, encoder_model(model), generator_model(model),
                         readme(model.variant), spec(model.variant))
