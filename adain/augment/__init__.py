"""Style augmentation: training images stylized on the fly with either network, inside a
jitted train step on the accelerator (``StyleAugment``), or on the host in an input pipeline
(``adain.augment.host``: tf.data; ``adain.augment.grain_map``: Grain).

    aug = StyleAugment(Stylizer.from_files(model="microast"), "bank.npz", p=0.5)
    images = aug(key, images)  # inside jax.jit, (B, H, W, 3) float in [0, 1]

The package sits beside the pipelines: it uses inference's Stylizer (its weights) and the
networks, and nothing above it. Guide: docs/augment.md.
"""

from adain.augment.style_augment import Draw, Gaussian, StyleAugment, fit_gaussian  # noqa: F401

__all__ = ["Draw", "Gaussian", "StyleAugment", "fit_gaussian"]
