"""MicroAST (Wang et al., AAAI 2023): the AdaIN family's real-time member, 0.47 M parameters.

``architecture`` (layer tables with the published state dict names; no Flax), ``network`` (the
Flax NNX modules), ``codes`` (MicroASTCode), ``weights`` (its state dicts and published files).
"""
