"""The shared engine of the lecture demo: models, methods and one pipeline per task.

Nothing here imports Gradio; every pipeline is a plain callable usable from tests, notebooks,
the command line (``python -m engine``) and the web app.
"""
__version__ = "0.1.0"
