"""MicroAST's architecture as data, without JAX or Flax: its four parts' layer tables.

MicroAST (Wang et al., AAAI 2023) is four small networks, each published as its own state dict:
a content encoder and a style encoder (the same architecture, separately trained), a modulator
and a decoder. The tables keep the PyTorch module names of its net_microAST.py, so that a key
such as ``"enc1.10.conv1.conv_layer.weight"`` names exactly one of our layers (see
adain.models.microast.weights). Every conv is a reflection pad of ksize // 2, then a VALID conv.
"""

from __future__ import annotations

from typing import NamedTuple

PARTS = ("content_encoder", "style_encoder", "modulator", "decoder")
CHANNELS = 64  # the features at 1/4 resolution, where AdaIN and the residual blocks work


class Conv(NamedTuple):
  """One reflection-padded conv: ``name`` is its state dict prefix (``name.weight``, ``name.bias``)."""

  name: str
  cin: int
  cout: int
  ksize: int
  stride: int = 1
  groups: int = 1

  @property
  def weight_shape(self) -> tuple[int, int, int, int]:
    """PyTorch's OIHW: a grouped conv's weight holds cin / groups input channels."""
    return (self.cout, self.cin // self.groups, self.ksize, self.ksize)


def _residual(prefix: str, channels: int = CHANNELS) -> tuple[Conv, Conv]:
  """A residual block's two 3x3 convs (x + conv2(relu(conv1(x))), or modulated in the decoder)."""
  return (Conv(f"{prefix}.conv1.conv_layer", channels, channels, 3),
          Conv(f"{prefix}.conv2.conv_layer", channels, channels, 3))


# Encoder ``enc1``: 9x9 conv, then two grouped stride-2 3x3 convs each followed by a 1x1 conv,
# every conv with a ReLU; then a residual block (no ReLU after it). Its output is level 1.
ENCODER_STEM = (
    Conv("enc1.0.conv_layer", 3, 16, 9),
    Conv("enc1.2.conv_layer", 16, 32, 3, stride=2, groups=16),
    Conv("enc1.4.conv_layer", 32, 32, 1),
    Conv("enc1.6.conv_layer", 32, 64, 3, stride=2, groups=32),
    Conv("enc1.8.conv_layer", 64, 64, 1),
)
ENCODER_RES1 = _residual("enc1.10")  # level 1: enc1's output
ENCODER_RES2 = _residual("enc2.0")  # level 2: enc2's output, the residual block applied to level 1
ENCODER_CONVS = ENCODER_STEM + ENCODER_RES1 + ENCODER_RES2

# Modulator: per level, a depthwise 3x3 conv then a global average gives the residual blocks'
# per-channel filter scale ``w`` (weightN) and skip scale ``b`` (biasN) from the style's
# level-N features.
MODULATOR_CONVS = tuple(Conv(f"{name}{level}.0.conv_layer", CHANNELS, CHANNELS, 3, groups=CHANNELS)
                        for level in (1, 2) for name in ("weight", "bias"))

# Decoder: dec1 (modulated by level 2's code) and dec2 (level 1's) are residual blocks at 1/4
# resolution; dec3 goes up twice (bilinear 2x, then a grouped 3x3 conv and a 1x1 conv, ReLUs)
# and ends with a 9x9 conv to RGB (no ReLU, no clamp).
DECODER_RES1 = _residual("dec1")
DECODER_RES2 = _residual("dec2")
DECODER_UP = (  # (conv, bilinear 2x upsampling before it)
    (Conv("dec3.1.conv_layer", 64, 32, 3, groups=32), True),
    (Conv("dec3.3.conv_layer", 32, 32, 1), False),
    (Conv("dec3.6.conv_layer", 32, 16, 3, groups=16), True),
    (Conv("dec3.8.conv_layer", 16, 16, 1), False),
)
DECODER_OUT = Conv("dec3.10.conv_layer", 16, 3, 9)
DECODER_CONVS = DECODER_RES1 + DECODER_RES2 + tuple(c for c, _ in DECODER_UP) + (DECODER_OUT,)

PART_CONVS = {"content_encoder": ENCODER_CONVS, "style_encoder": ENCODER_CONVS,
              "modulator": MODULATOR_CONVS, "decoder": DECODER_CONVS}


def state_dict_shapes(part: str) -> dict[str, tuple[int, ...]]:
  """The published state dict of ``part``: every key and its shape (OIHW weights, biases)."""
  shapes = {}
  for conv in PART_CONVS[part]:
    shapes[f"{conv.name}.weight"] = conv.weight_shape
    shapes[f"{conv.name}.bias"] = (conv.cout,)
  return shapes


# Sizes. The stride-2 convs (reflection pad 1, 3x3) give ceil(n / 2), so the features are
# ceil(ceil(n / 2) / 2) a side and the decoder's output 4x that: an odd or non-multiple-of-4
# size comes out up to 3 pixels larger, and the output is cropped to the input's size from the
# top-left, as the paper's network's is.
DOWNSAMPLE = 4


def _half_up(n: int) -> int:
  return (n + 1) // 2


def feature_size(n: int) -> int:
  """The features' side for an input side n (the stride-2 convs round up)."""
  return _half_up(_half_up(n))


def output_size(n: int) -> int:
  """The decoder's side before cropping, for an input side n."""
  return DOWNSAMPLE * feature_size(n)


# The 9x9 convs' reflection padding (4) needs a side of at least 5, and so do the 1/4-resolution
# features, which need 2 positions a side for their padding and unbiased statistics:
# feature_size(5) == 2.
MIN_SIDE = 5


class Spec(NamedTuple):
  """MicroAST's static spec (adain.models.interface.Params): one architecture, so only its name."""

  network: str = "microast"

  @property
  def name(self) -> str:
    return self.network
