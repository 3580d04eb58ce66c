"""The paper's Fig. 6 model variants built from the seeded weights (a helper module, not a test
module): shared by the variant, evaluate and app tests. Unlike seeded_weights, it imports adain."""

from __future__ import annotations

import seeded_weights
from adain.models.adain import weights
from adain.models.adain.architecture import Variant
from adain.models.adain.network import AdaIN

VARIANTS = {"adain": Variant(), "concat": Variant("concat"),
            "bn_decoder": Variant(decoder_norm="batch"),
            "in_decoder": Variant(decoder_norm="instance")}


def variant_model(name: str) -> AdaIN:
  v = VARIANTS[name]
  return weights.model_from_state_dicts(
      seeded_weights.vgg_state_dict(),
      seeded_weights.variant_decoder_state_dict(v.fusion, v.decoder_norm))


def save_variant(path, name: str):
  v = VARIANTS[name]
  weights.save_native(path, seeded_weights.variant_decoder_state_dict(v.fusion, v.decoder_norm),
                      "decoder", **weights.variant_meta(v))
  return path
