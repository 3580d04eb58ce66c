"""Export: the AdaIN network as ONNX (``python -m adain.export``), and a page that runs it in a
browser (``--web``). Needs the ``export`` extra (onnx, onnxruntime); ``import adain`` never
imports this package.
"""
