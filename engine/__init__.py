"""The shared engine of the lecture demo (no Gradio here). One room per task, shared rooms below.

Task rooms (each holds its algorithms and its pipeline)::

    captioning/    tags, sentence from tags, CAM; BLIP captioner       -> CaptionPipeline
    change/        alignment, change detection and typing, sentences   -> ChangePipeline
    editing/       instructions, localisation, edit operations, editors -> EditPipeline
    retrieval/     gallery index, encoders, ARTEMIS-style scoring       -> RetrievalPipeline
    segmentation/  PANet prototypes, evaluation                         -> SegmentPipeline
    fewshot/       support sets, methods/ (one file each), trainer      -> FewShotPipeline

Shared rooms::

    models/        networks, weights, preprocessing; registry + model factory (as in timm)
    factory.py     builds a pipeline for (task, model): the only user of the model registry
    inputs/        input rules: images, text, painted masks, folders and zip uploads
    errors.py      UserInputError: what the user can fix (anything else is a bug)
    viz.py         heatmap overlays, embedding plots;  colours.py: CIELAB and colour names
    cli/           ``python -m engine``: one sub-command per task
"""
__version__ = "0.2.0"
