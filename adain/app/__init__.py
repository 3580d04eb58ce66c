"""python -m adain.app: stylize in the browser (Gradio, the ``app`` extra).

``studio`` holds the model side (caches, no Gradio), ``ui`` the page and the /stylize endpoint.
"""
