"""Reproduce a result: a JSON "recipe" of what produced it, that the CLI runs again (issue 16).

A recipe names the command ("caption", "edit", "fewshot"), each input image by the SHA-256 of
its *decoded pixels* (after the input rules: upright RGB, downscaled to ``max_side``), so the
same photo re-encoded or renamed is still found, the model, seed and settings, the device and
library versions, and a summary of the output (the caption and tags; the edited image's pixel
hash; each query's answer and probabilities). A painted mask, which exists only in the browser,
is kept in the recipe itself (a PNG, base64).

    recipe = caption_recipe(image, "cat.jpg", 1024, settings, result)   # the app, per result
    python -m engine reproduce recipe.json [--files DIR ...]           # runs it again

:func:`find_inputs` looks for files whose decoded pixels have the recorded hashes, and
:func:`run` runs the command and compares the new output with the recorded one.
"""
from __future__ import annotations

import base64
import hashlib
import io
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.errors import UserInputError

#: The recipe format's name and version (a recipe of another format is refused).
FORMAT = "vl-demo-reproduce/1"
#: Commands a recipe can name.
COMMANDS = ("caption", "edit", "fewshot")
#: Packages whose versions a recipe records.
PACKAGES = ("torch", "gradio", "transformers", "diffusers", "open_clip_torch", "timm",
            "onnxruntime", "numpy", "pillow", "huggingface_hub")
#: Folders searched for input files besides the recipe's own and the ones given.
ASSETS = Path(__file__).resolve().parent.parent / "assets"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def versions() -> dict[str, str]:
    """{"python": "3.11.7", "torch": "2.14.1", ...}; "not installed" for a missing package."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def pixel_hash(image: Image.Image) -> str:
    """SHA-256 (hex) of an image's mode, size and pixel bytes."""
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def image_input(role: str, image: Image.Image, name: str | None, max_side: int | None
                ) -> dict:
    """The record of one decoded input image.

    Args:
        role: what the image is: "image", "query" or "support" (a support record also gets
            ``class_index``, into the recipe's ``settings["classes"]``).
        image: the decoded image the pipeline received.
        name: its file name when known (only informative).
        max_side: the long side it was downscaled to when decoded (None: not downscaled).
    """
    return {"role": role, "name": name, "sha256": pixel_hash(image),
            "size": list(image.size), "max_side": max_side}


def mask_input(mask: np.ndarray) -> dict:
    """The record of a painted (H, W) bool mask, kept whole (a 1-bit PNG, base64)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(mask, bool)).save(buf, format="PNG", optimize=True)
    return {"role": "mask", "png_base64": base64.b64encode(buf.getvalue()).decode("ascii"),
            "size": [int(mask.shape[1]), int(mask.shape[0])]}


def read_mask(record: dict) -> np.ndarray:
    """The (H, W) bool mask of a :func:`mask_input` record."""
    data = base64.b64decode(record["png_base64"])
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) > 0


def make_recipe(command: str, inputs: list[dict], model: str, seed: int | None,
                settings: dict, output: dict, device: str = "cpu float32") -> dict:
    """A recipe (JSON-ready dict).

    Raises:
        ValueError: unknown ``command``.
    """
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {COMMANDS}, got {command!r}")
    return {"format": FORMAT, "command": command, "model": model, "seed": seed,
            "settings": settings, "inputs": inputs, "output": output, "device": device,
            "versions": versions()}


# --- what each command's output is summarised as (the app and the CLI use the same) ----------

def caption_output(result) -> dict:
    """Caption and tags (probabilities to 4 decimals) of a CaptionResult."""
    return {"caption": result.caption,
            "tags": [[t.name, round(float(t.probability), 4)] for t in result.tags]}


def edit_output(result) -> dict:
    """Pixel hash, operation, target and changed fraction of an EditResult."""
    return {"image_sha256": pixel_hash(result.image), "operation": result.operation,
            "target": result.target, "changed_fraction": round(result.changed_fraction, 5)}


def fewshot_output(result) -> dict:
    """Each query's answer (None for a tie) and probabilities (4 decimals)."""
    return {"method": result.method, "classes": list(result.class_names),
            "predictions": [{"label": p.answer, "probabilities": {
                k: round(float(v), 4) for k, v in p.probabilities.items()}}
                for p in result.predictions]}


# --- running a recipe again ----------------------------------------------------------------

def _candidates(folders: list[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        if folder.is_file():
            files.append(folder)
        elif folder.is_dir():
            files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    return list(dict.fromkeys(files))


def find_inputs(recipe: dict, folders: list[Path]) -> list[Image.Image | np.ndarray]:
    """The recipe's inputs, in order: images found among the files of ``folders`` (searched
    recursively) whose decoded pixels have the recorded hash; masks from the recipe itself.

    Raises:
        UserInputError: an image was not found (the message names it and where was looked).
    """
    from engine.inputs.images import ImageInputError, load_image
    files = _candidates(folders)
    by_side: dict[Any, dict[str, Image.Image]] = {}
    found: list[Image.Image | np.ndarray] = []
    for record in recipe["inputs"]:
        if record["role"] == "mask":
            found.append(read_mask(record))
            continue
        side = record.get("max_side")
        if side not in by_side:
            table: dict[str, Image.Image] = {}
            for path in files:
                try:
                    image = load_image(path, max_side=side).image
                except ImageInputError:
                    continue
                table.setdefault(pixel_hash(image), image)
            by_side[side] = table
        image = by_side[side].get(record["sha256"])
        if image is None:
            raise UserInputError(
                f"input {record.get('name') or record['role']!r} ({record['role']}, sha256 "
                f"{record['sha256'][:12]}...) was not found among {len(files)} image files in "
                f"{', '.join(str(f) for f in folders)}: pass its folder with --files")
        found.append(image)
    return found


def read_recipe(path: str | Path) -> dict:
    """Read and check a recipe file.

    Raises:
        UserInputError: not JSON, another format, or an unknown command.
        FileNotFoundError: no such file.
    """
    import json
    try:
        recipe = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: not a recipe (not JSON: {exc})") from None
    if not isinstance(recipe, dict) or recipe.get("format") != FORMAT:
        raise UserInputError(f"{path}: not a recipe of format {FORMAT}")
    if recipe.get("command") not in COMMANDS:
        raise UserInputError(f"{path}: unknown command {recipe.get('command')!r}; valid: "
                             f"{', '.join(COMMANDS)}")
    return recipe


def run(recipe: dict, inputs: list, pipeline) -> dict:
    """Run ``recipe`` on its found ``inputs`` with ``pipeline`` (from the factory, for the
    recipe's command and model) and summarise the output as the app did.

    Raises:
        UserInputError: as the command's pipeline raises.
    """
    s, command = recipe["settings"], recipe["command"]
    roles = [r["role"] for r in recipe["inputs"]]
    if command == "caption":
        result = pipeline(inputs[0], top_k=int(s["top_k"]), decoding=s["decoding"],
                          seed=int(recipe["seed"]))
        return caption_output(result)
    if command == "edit":
        mask = inputs[roles.index("mask")] if "mask" in roles else None
        result = pipeline(inputs[0], s["text"], mask, seed=int(recipe["seed"]),
                          steps=int(s["steps"]), guidance_scale=float(s["guidance"]),
                          image_guidance_scale=float(s["image_guidance"]))
        return edit_output(result)
    from engine.fewshot.support import SupportSet
    pairs = [(r["class_index"], im) for r, im in zip(recipe["inputs"], inputs)
             if r["role"] == "support"]  # in the support set's own order
    support = SupportSet(tuple(s["classes"]), tuple(im for _, im in pairs),
                         tuple(int(y) for y, _ in pairs))
    queries = [im for r, im in zip(recipe["inputs"], inputs) if r["role"] == "query"]
    return fewshot_output(pipeline(support, queries, method=s["method"]))


__all__ = ["COMMANDS", "FORMAT", "caption_output", "edit_output", "fewshot_output",
           "find_inputs", "image_input", "make_recipe", "mask_input", "pixel_hash",
           "read_mask", "read_recipe", "run", "versions"]
