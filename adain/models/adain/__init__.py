"""The paper's network (Huang & Belongie 2017): normalised VGG-19 to relu4_1, AdaIN, decoder.

``architecture`` (layer tables, variants; no Flax), ``network`` (the Flax NNX modules),
``codes`` (StyleCode), ``weights`` (its state dicts and published files).
"""
