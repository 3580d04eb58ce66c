"""Export of the model to other runtimes (python -m adain.export): ONNX, and a static web page."""
