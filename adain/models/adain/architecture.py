"""The network's architecture as data, without JAX or Flax: layer tables and model variants.

Layer tables keep the PyTorch Sequential indices of pytorch-AdaIN's net.py, so that a state dict
key such as ``"29.weight"`` names exactly one of our layers (see adain/weights/). adain.models.adain.network
builds the Flax modules from them; the weights loaders and the command read them without Flax.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

from adain.errors import AdainError


class EncoderLayer(NamedTuple):
  torch_index: int
  cin: int
  cout: int
  ksize: int
  pool_before: bool
  tap: str | None  # name of the feature this layer's ReLU output is, if it is returned


# vgg[:31] of net.py: conv0 (1x1 colour transform, no ReLU), then 3x3 convs with ReLU.
ENCODER_LAYERS = (
    EncoderLayer(0, 3, 3, 1, False, None),
    EncoderLayer(2, 3, 64, 3, False, "relu1_1"),
    EncoderLayer(5, 64, 64, 3, False, None),
    EncoderLayer(9, 64, 128, 3, True, "relu2_1"),
    EncoderLayer(12, 128, 128, 3, False, None),
    EncoderLayer(16, 128, 256, 3, True, "relu3_1"),
    EncoderLayer(19, 256, 256, 3, False, None),
    EncoderLayer(22, 256, 256, 3, False, None),
    EncoderLayer(25, 256, 256, 3, False, None),
    EncoderLayer(29, 256, 512, 3, True, "relu4_1"),
)
FEATURES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# The rest of the published vgg_normalised (relu4_2 .. relu5_4): present in the files, unused.
VGG_UNUSED_LAYERS = tuple((i, 512, 512) for i in (32, 35, 38, 42, 45, 48, 51))


class DecoderLayer(NamedTuple):
  torch_index: int
  cin: int
  cout: int
  upsample_before: bool
  relu: bool


DECODER_LAYERS = (
    DecoderLayer(1, 512, 256, False, True),
    DecoderLayer(5, 256, 256, True, True),
    DecoderLayer(8, 256, 256, False, True),
    DecoderLayer(11, 256, 256, False, True),
    DecoderLayer(14, 256, 128, False, True),
    DecoderLayer(18, 128, 128, True, True),
    DecoderLayer(21, 128, 64, False, True),
    DecoderLayer(25, 64, 64, True, True),
    DecoderLayer(28, 64, 3, False, False),
)

MIN_SIDE = 16  # relu4_1 needs at least 2x2 positions for reflection padding and statistics.

FUSIONS = ("adain", "concat")
DECODER_NORMS = ("none", "batch", "instance")


@dataclasses.dataclass(frozen=True)
class Variant:
  """The architecture of the paper's model or one of its Fig. 6 ablations.

  ``fusion``: how content and style meet before the decoder: AdaIN (the paper), or ``concat``
  (Enc-Concat-Dec: the decoder sees the content code and the style's relu4_1 features stacked).
  ``decoder_norm``: a BatchNorm or affine InstanceNorm after every decoder conv but the last.
  """

  network: ClassVar[str] = "adain"  # its package, adain.models.adain (adain.models.interface.Params)
  fusion: str = "adain"
  decoder_norm: str = "none"

  def __post_init__(self):
    if self.fusion not in FUSIONS or self.decoder_norm not in DECODER_NORMS:
      raise AdainError(None, f"unknown model variant: fusion {self.fusion!r} (one of {FUSIONS}), "
                       f"decoder_norm {self.decoder_norm!r} (one of {DECODER_NORMS})")

  @property
  def name(self) -> str:
    """adain, concat, bn_decoder, in_decoder (train/configs/ablations), or both changes joined."""
    parts = ["concat"] if self.fusion == "concat" else []
    if self.decoder_norm != "none":
      parts.append({"batch": "bn_decoder", "instance": "in_decoder"}[self.decoder_norm])
    return "+".join(parts) or "adain"


def decoder_layers(variant: Variant = Variant()) -> tuple[DecoderLayer, ...]:
  """DECODER_LAYERS, with 1024 input channels for Enc-Concat-Dec (content and style codes)."""
  if variant.fusion == "adain":
    return DECODER_LAYERS
  first = DECODER_LAYERS[0]
  return (first._replace(cin=2 * first.cin),) + DECODER_LAYERS[1:]
