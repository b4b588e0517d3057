"""Vision-and-language lecture demo: assembles the tabs and launches the Gradio app.

    pip install -r requirements.txt && python app.py     # http://127.0.0.1:7860

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured (Gradio reads them in launch()).
"""
from __future__ import annotations

import logging
import os

import gradio as gr

from demos import caption, change, edit, fewshot, generate, retrieval, segment
from demos.common import install_gradio_patches
from engine.runtime import quiet_libraries

TITLE = "Vision & Language: a lecture demo"
INTRO = f"""# {TITLE}
Caption an image, learn new classes from a few examples, and see what the networks look at.
Everything runs on this server's CPU with **embedded offline models** (EfficientNet-Lite0 on
ImageNet, MiniLM sentence embeddings). Large **hub models** (BLIP, OpenCLIP) can be picked in
each tab; they are downloaded only when chosen, and if the model hub is unreachable the tab says
so and stays on the embedded models."""
#: Upload limit per file (also enforced again when decoding, see engine.inputs.images.MAX_BYTES).
MAX_FILE_SIZE = "25mb"
#: CPU-heavy calls that may run at once (this demo targets 2-core CPU machines).
CPU_CONCURRENCY = int(os.environ.get("DEMO_CPU_CONCURRENCY", "2"))
#: Torch threads per process: CPU_CONCURRENCY requests x 1 thread fill 2 cores without
#: oversubscribing them (2 requests x 2 threads made every request several times slower).
TORCH_THREADS = int(os.environ.get("DEMO_TORCH_THREADS", "1"))


def build_app() -> gr.Blocks:
    """Build the Blocks app (importable for tests without launching)."""
    quiet_libraries()
    install_gradio_patches()
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            caption.build()
            fewshot.build()
            change.build()
            edit.build()
            retrieval.build()
            segment.build()
            generate.build()
    demo.queue(default_concurrency_limit=CPU_CONCURRENCY, max_size=200)
    return demo


def main() -> None:
    import torch
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(TORCH_THREADS)
    from engine.factory import preload
    from engine.runtime import set_onnx_memory_arena
    set_onnx_memory_arena(False)  # a server keeps no batch's memory (docs/benchmarks.md)
    preload(("caption",))  # the first tab's models load while the server starts
    build_app().launch(max_file_size=MAX_FILE_SIZE, show_error=True)


if __name__ == "__main__":
    main()
