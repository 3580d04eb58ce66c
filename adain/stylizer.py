"""Kept for scripts written against adain 0.1 (``from adain.stylizer import Stylizer``): the
Stylizer lives in adain.inference.stylizer and is exported as ``adain.Stylizer``."""

from adain.inference.stylizer import ContentCode, Stylizer, StyleFeatures  # noqa: F401
