"""Text-to-image generation on the scene world: tokenising descriptions (:mod:`.text`), the
training data (:mod:`.data`), training (:mod:`.train`), sampling with classifier-free guidance
(:mod:`.pipeline`) and the scene-parser evaluation (:mod:`.evaluate`). The network is
:mod:`engine.models.scene_generator`."""
