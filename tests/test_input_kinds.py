"""Issue 15, items 1, 2, 8, 9, 10, 17: input kinds real users send (colour-key transparency,
semi-transparent paint, unreadable zip members, macOS/Windows metadata in folders and zips, a
scriptable gallery selection, the CLI's hub fallback), each through the input rules, the CLI
and the tab handlers. The served app's side is in ``test_app_inputs.py``."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from PIL import Image

from engine.cli import main
from engine.inputs.files import decode_uploads, image_files, is_skipped
from engine.inputs.images import BACKGROUND, ImageInputError, load_image, load_mask
from engine.inputs.masks import painted_mask
from engine.models import OFFLINE_MESSAGE

BORDER = 24


# --- builders ------------------------------------------------------------------------------------

def framed_cat(tmp_path: Path) -> tuple[Path, Path]:
    """The cat photo in a black border marked transparent: (RGB + tRNS colour key, RGBA).

    The photo's own pixels are lifted to >= 1 so only the border has the key colour (0, 0, 0).
    """
    cat = np.maximum(np.asarray(load_image(EXAMPLES / "cat.jpg", max_side=256).image), 1)
    h, w, _ = cat.shape
    rgb = np.zeros((h + 2 * BORDER, w + 2 * BORDER, 3), np.uint8)
    rgb[BORDER:-BORDER, BORDER:-BORDER] = cat
    keyed, alpha = tmp_path / "cat_keyed.png", tmp_path / "cat_alpha.png"
    Image.fromarray(rgb).save(keyed, transparency=(0, 0, 0))
    a = np.where((rgb == 0).all(-1), 0, 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, a]), "RGBA").save(alpha)
    return keyed, alpha


def png_bytes(color=(10, 200, 30), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def patch_zip_member(data: bytes, name: str, *, method: int | None = None, flags: int = 0,
                     flip_byte: bool = False) -> bytes:
    """Rewrite one member's headers in zip bytes (zipfile cannot write these members itself).

    Args:
        method: compression method to declare in the local and central headers (9 = Deflate64,
            99 = WinZip AES), without touching the data.
        flags: bits OR-ed into the general-purpose flags of both headers (0x1 = encrypted).
        flip_byte: invert one byte in the middle of the member's data (its CRC no longer
            matches, or its Deflate stream breaks).
    """
    buf, raw = bytearray(data), name.encode()
    i = buf.find(b"PK\x03\x04")
    while i != -1:  # local file headers: flags @6, method @8, sizes @18, name @30
        nlen, xlen = struct.unpack_from("<HH", buf, i + 26)
        if bytes(buf[i + 30:i + 30 + nlen]) == raw:
            struct.pack_into("<H", buf, i + 6, struct.unpack_from("<H", buf, i + 6)[0] | flags)
            if method is not None:
                struct.pack_into("<H", buf, i + 8, method)
            if flip_byte:
                csize = struct.unpack_from("<I", buf, i + 18)[0]
                buf[i + 30 + nlen + xlen + csize // 2] ^= 0xFF
        i = buf.find(b"PK\x03\x04", i + 4)
    i = buf.find(b"PK\x01\x02")
    while i != -1:  # central directory headers: flags @8, method @10, name @46
        nlen = struct.unpack_from("<H", buf, i + 28)[0]
        if bytes(buf[i + 46:i + 46 + nlen]) == raw:
            struct.pack_into("<H", buf, i + 8, struct.unpack_from("<H", buf, i + 8)[0] | flags)
            if method is not None:
                struct.pack_into("<H", buf, i + 10, method)
        i = buf.find(b"PK\x01\x02", i + 4)
    return bytes(buf)


def zip_with(path: Path, members: dict[str, bytes], patches: dict[str, dict] | None = None,
             compression=zipfile.ZIP_STORED) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    data = buf.getvalue()
    for name, patch in (patches or {}).items():
        data = patch_zip_member(data, name, **patch)
    path.write_bytes(data)
    return path


def macos_litter(folder: Path, real: list[str]) -> None:
    """What a Mac and Windows leave beside a folder's photos: AppleDouble twins, a
    ``__MACOSX`` folder, ``.DS_Store`` and ``Thumbs.db``."""
    (folder / "__MACOSX").mkdir(exist_ok=True)
    for name in real:
        (folder / f"._{name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (folder / "__MACOSX" / f"._{name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")


def tiny_clip_encoder():
    """OpenCLIP with 1 layer per tower, 32x32 input (seeded random weights), as in
    test_retrieval.py: enough to index an upload."""
    from dataclasses import replace

    from tiny_models import tiny_openclip

    from engine.models._zoo import CLIP_PREPROCESS
    from engine.retrieval.encoders import ClipEncoder
    return ClipEncoder(tiny_openclip(), replace(CLIP_PREPROCESS, size=32))


def cli(capsys, *args: str) -> tuple[int, list[dict], str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, [json.loads(x) for x in out.splitlines() if x.strip()], err


# --- 1. transparency stored as a colour key --------------------------------------------------------

def test_a_colour_keyed_border_is_composited_like_real_alpha_and_captioned_the_same(tmp_path):
    from engine.factory import get_pipeline
    keyed, alpha = framed_cat(tmp_path)
    a, b = load_image(keyed).image, load_image(alpha).image
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.asarray(a)[:BORDER].reshape(-1, 3).min(0).tolist() == list(BACKGROUND)
    pipe = get_pipeline("caption")
    tags_a, tags_b = pipe(a).tags, pipe(b).tags
    assert [t.name for t in tags_a] == [t.name for t in tags_b] and "cat" in tags_a[0].name


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "1"])
def test_grayscale_palette_16_bit_and_1_bit_colour_keys_become_the_background(mode):
    arr = np.zeros((6, 8), np.uint8)  # 0 = the key colour (black), 1 and 2 = drawn
    arr[2:4, 3:6], arr[4, 1:3] = 1, 2
    if mode == "P":
        img = Image.fromarray(arr, "P")
        img.putpalette([0, 0, 0, 30, 60, 90, 200, 10, 10] + [0] * 759)
    elif mode == "I;16":
        img = Image.fromarray(arr.astype(np.uint16) * 3000, "I;16")
    elif mode == "1":
        img = Image.fromarray((arr > 0).astype(np.uint8) * 255).convert("1")
    else:
        img = Image.fromarray(arr * 90, "L")

    def loaded(**save_args) -> np.ndarray:
        buf = io.BytesIO()
        img.save(buf, "PNG", **save_args)
        return np.asarray(load_image(buf.getvalue()).image)

    keyed, plain = loaded(transparency=0), loaded()
    assert (plain[arr == 0] == 0).all()  # without the key the border is black ...
    assert (keyed[arr == 0] == BACKGROUND).all()  # ... with it, the documented background
    assert np.array_equal(keyed[arr > 0], plain[arr > 0])  # drawn pixels untouched
    if mode == "P":
        assert keyed[3, 4].tolist() == [30, 60, 90]


def test_colour_keys_are_composited_in_zip_members_folders_and_the_cli(tmp_path, capsys):
    from engine.fewshot.support import read_support_folder
    keyed, alpha = framed_cat(tmp_path)
    files, notes = decode_uploads([zip_with(tmp_path / "g.zip",
                                            {"cat_keyed.png": keyed.read_bytes()})], 192)
    assert not notes and np.asarray(files[0].image)[0, 0].tolist() == list(BACKGROUND)
    for cls in ("cat", "other"):
        (tmp_path / "support" / cls).mkdir(parents=True)
        (tmp_path / "support" / cls / "x.png").write_bytes(keyed.read_bytes())
    support = read_support_folder(tmp_path / "support")
    assert np.asarray(support.images[0])[0, 0].tolist() == list(BACKGROUND)
    status, rows, err = cli(capsys, "caption", str(keyed), str(alpha))
    assert status == 0, err
    assert rows[0]["tags"] == rows[1]["tags"] and "cat" in rows[0]["tags"][0][0]


def test_a_colour_keyed_mask_layer_selects_only_the_visible_paint():
    layer = np.zeros((10, 12, 3), np.uint8)  # black = the key (transparent), red = painted
    layer[2:5, 3:7] = (255, 0, 0)
    buf = io.BytesIO()
    Image.fromarray(layer).save(buf, "PNG", transparency=(0, 0, 0))
    mask = load_mask(buf.getvalue(), size=(12, 10))
    assert mask.sum() == 12 and mask[2:5, 3:7].all()


# --- 2. semi-transparent paint is paint --------------------------------------------------------------

def _helmet_layer(tmp_path: Path, alpha: int) -> Path:
    """The bundled helmet mask of the astronaut example, painted at opacity ``alpha``."""
    rgba = np.asarray(Image.open(EXAMPLES / "edit" / "astronaut_helmet_mask.png").convert("RGBA"))
    out = rgba.copy()
    out[..., 3] = np.where(rgba[..., 3] > 0, alpha, 0)
    path = tmp_path / f"helmet_{alpha}.png"
    Image.fromarray(out, "RGBA").save(path)
    return path


def test_a_40_percent_brush_paints_the_same_region_as_an_opaque_one(tmp_path):
    size = load_image(EXAMPLES / "astronaut.jpg").image.size
    faint = painted_mask([_helmet_layer(tmp_path, 100)], size)
    solid = painted_mask([_helmet_layer(tmp_path, 255)], size)
    assert 0.01 < solid.mean() < 0.5 and np.array_equal(faint, solid)


def test_any_visible_alpha_is_painted_and_fully_transparent_is_not():
    layer = np.zeros((4, 256, 4), np.uint8)
    layer[0, :, 3] = np.arange(256)  # a soft edge: every opacity
    mask = load_mask(Image.fromarray(layer, "RGBA"), size=(256, 4), allow_empty=True)
    assert mask[0].tolist() == [False] + [True] * 255 and not mask[1:].any()


def test_edit_masked_recolours_only_a_faintly_painted_region(tmp_path):
    from demos.edit import edit_masked
    astro = str(EXAMPLES / "astronaut.jpg")
    results = [edit_masked({"background": astro, "layers": [str(_helmet_layer(tmp_path, a))],
                            "composite": None}, "gold") for a in (100, 255)]
    (_, _, _, faint, faint_md), (_, _, _, solid, _) = results
    assert "Nothing was painted" not in faint_md
    assert faint["changed_fraction"] == solid["changed_fraction"] < 0.5


def test_segment_accepts_a_faintly_painted_support_in_the_tab_and_the_cli(tmp_path, capsys):
    from demos.segment import support_pair
    seg = EXAMPLES / "segment"
    rgba = np.asarray(Image.open(seg / "support_layer.png").convert("RGBA")).copy()
    rgba[..., 3] = np.where(rgba[..., 3] > 0, 100, 0)
    layer = tmp_path / "faint_layer.png"
    Image.fromarray(rgba, "RGBA").save(layer)
    img, mask, _ = support_pair({"background": str(seg / "support.jpg"), "layers": [str(layer)],
                             "composite": None}, 1)
    truth = load_mask(seg / "support_mask.png", size=img.size)
    assert np.array_equal(mask, truth | mask) and mask.sum() >= 0.9 * truth.sum()
    status, (row,), err = cli(capsys, "segment", "--support", str(seg / "support.jpg"),
                              str(layer), "--query", str(seg / "query.jpg"), "--out",
                              str(tmp_path / "m.png"))
    assert status == 0, err
    assert row["foreground_pixels"] > 0


def test_a_dark_gray_mask_file_is_refused_naming_the_rule_and_its_brightest_level(tmp_path):
    path = tmp_path / "labels.png"
    arr = np.zeros((6, 10), np.uint8)
    arr[1:4, 2:6] = 1  # a 0/1 label image, as datasets store masks
    Image.fromarray(arr).save(path)
    with pytest.raises(ImageInputError, match=r"no pixel reaches gray level 128 \(white = "
                                              r"object; its brightest is 1\)"):
        load_mask(path, size=(10, 6))


# --- 8. zip members that cannot be read ------------------------------------------------------------

@pytest.mark.parametrize("patch, words", [
    ({"flags": 0x1}, "encrypted"),                    # password-protected (ZipCrypto)
    ({"flip_byte": True}, "corrupt (Bad CRC-32"),     # wrong CRC next to a good member
    ({"method": 9}, "unsupported compression (Deflate64"),  # what Windows writes for big folders
    ({"method": 99, "flags": 0x1}, "encrypted"),      # WinZip AES
])
def test_an_unreadable_zip_member_is_skipped_and_named_and_the_rest_indexed(tmp_path, patch,
                                                                            words):
    archive = zip_with(tmp_path / "photos.zip", {"good.png": png_bytes(), "bad.png": png_bytes(),
                                                 "also_good.png": png_bytes((200, 0, 0))},
                       {"bad.png": patch})
    files, notes = decode_uploads([archive], 192)
    assert [f.name for f in files] == ["good.png", "also_good.png"]
    assert len(notes) == 1 and notes[0].startswith("photos.zip: bad.png skipped: " + words)


def test_a_broken_deflate_stream_is_named_corrupt_in_the_gallery_upload(tmp_path):
    from engine.retrieval.pipeline import RetrievalPipeline
    archive = zip_with(tmp_path / "d.zip", {"a.png": png_bytes(), "b.png": png_bytes((1, 2, 3))},
                       {"b.png": {"flip_byte": True}}, compression=zipfile.ZIP_DEFLATED)
    gallery = RetrievalPipeline(tiny_clip_encoder()).index_uploads([archive])
    assert gallery.index.names == ["a.png"]
    assert len(gallery.notes) == 1 and "b.png skipped: corrupt" in gallery.notes[0]


def test_a_zip_over_the_gallery_limit_is_refused_before_any_member_is_decoded(tmp_path,
                                                                              monkeypatch):
    from engine.errors import UserInputError
    from engine.inputs import files as files_module
    from engine.retrieval import pipeline as pipeline_module
    from engine.retrieval.pipeline import RetrievalPipeline
    archive = zip_with(tmp_path / "big.zip", {f"{i}.png": png_bytes() for i in range(6)}
                       | {"readme.txt": b"hi", "__MACOSX/._0.png": b"x"})
    decoded = []
    monkeypatch.setattr(files_module, "load_image",
                        lambda *a, **k: decoded.append(1) or load_image(*a, **k))
    monkeypatch.setattr(pipeline_module, "MAX_GALLERY", 5)
    with pytest.raises(UserInputError, match="6 images were uploaded; at most 5 can be used"):
        RetrievalPipeline(tiny_clip_encoder()).index_uploads([archive])
    assert decoded == []
    monkeypatch.setattr(pipeline_module, "MAX_GALLERY", 6)  # readme and metadata not counted
    assert len(RetrievalPipeline(tiny_clip_encoder()).index_uploads([archive]).images) == 6


def test_an_empty_zip_says_so_in_one_sentence(tmp_path):
    from engine.errors import UserInputError
    from engine.retrieval.pipeline import RetrievalPipeline
    archive = zip_with(tmp_path / "empty.zip", {"__MACOSX/._x.png": b"x"})
    with pytest.raises(UserInputError) as info:
        RetrievalPipeline(tiny_clip_encoder()).index_uploads([archive])
    message = str(info.value)
    assert message.startswith("No usable image in the upload: empty.zip holds no files")
    assert not message.rstrip().endswith(":")


# --- 9. macOS and Windows metadata: one skip rule ------------------------------------------------------

@pytest.mark.parametrize("name, skipped", [
    ("cat.jpg", False), ("photos/cat.jpg", False), ("._cat.jpg", True), (".DS_Store", True),
    ("__MACOSX/photos/._cat.jpg", True), ("__MACOSX/cat.jpg", True), ("Thumbs.db", True),
    ("THUMBS.DB", True), ("photos\\desktop.ini", True), (".hidden/cat.jpg", True),
    ("my.photos/cat.jpg", False), ("../../outside/cat.jpg", False), ("./cat.jpg", False),
])
def test_one_rule_names_the_metadata_to_skip(name, skipped):
    assert is_skipped(name) is skipped


def test_a_macos_support_folder_classifies_from_the_cli(tmp_path, capsys):
    root = tmp_path / "support"
    for cls in ("cat", "coffee"):
        (root / cls).mkdir(parents=True)
        for i in (1, 2, 3):
            (root / cls / f"{cls}_{i}.jpg").write_bytes(
                (EXAMPLES / "fewshot" / "support" / cls / f"{cls}_{i}.jpg").read_bytes())
        macos_litter(root / cls, [f"{cls}_{i}.jpg" for i in (1, 2, 3)])
    macos_litter(root, [])
    (root / "__MACOSX" / "cat").mkdir()
    (root / "__MACOSX" / "cat" / "._cat_1.jpg").write_bytes(b"\x00\x05\x16\x07")
    status, (row,), err = cli(capsys, "classify", "--support", str(root), "--query",
                              str(EXAMPLES / "fewshot" / "query" / "cat_query.jpg"))
    assert status == 0, err
    assert row["label"] == "cat" and set(row["probabilities"]) == {"cat", "coffee"}


def test_gallery_folders_segment_data_runs_and_zips_skip_the_same_metadata(tmp_path, capsys):
    from engine.fewshot.omniglot import read_runs
    from engine.segmentation.evaluate import load_pairs
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    (gallery / "cat.jpg").write_bytes((EXAMPLES / "cat.jpg").read_bytes())
    macos_litter(gallery, ["cat.jpg"])
    assert [p.name for p in image_files(gallery)] == ["cat.jpg"]
    data = tmp_path / "seg" / "horse"
    data.mkdir(parents=True)
    (data / "a.jpg").write_bytes((EXAMPLES / "segment" / "support.jpg").read_bytes())
    (data / "a_mask.png").write_bytes((EXAMPLES / "segment" / "support_mask.png").read_bytes())
    macos_litter(data, ["a.jpg"])
    macos_litter(tmp_path / "seg", [])
    (tmp_path / "seg" / "__MACOSX" / "horse").mkdir()
    (tmp_path / "seg" / "__MACOSX" / "horse" / "a.jpg").write_bytes(b"x")
    (tmp_path / "seg" / "__MACOSX" / "horse" / "a_mask.png").write_bytes(b"x")
    assert list(load_pairs(tmp_path / "seg")) == ["horse"]
    run = tmp_path / "runs" / "run01"
    for sub in ("training", "test"):
        (run / sub).mkdir(parents=True)
        (run / sub / ("class01.png" if sub == "training" else "item01.png")).write_bytes(
            png_bytes())
    (run / "training" / "._class01.png").write_bytes(b"\x00\x05\x16\x07")
    (run / "class_labels.txt").write_text("test/item01.png training/class01.png\n")
    (runs,) = read_runs(tmp_path / "runs")
    assert [p.name for p in runs.support] == ["class01.png"]
    archive = zip_with(tmp_path / "mac.zip", {"photos/cat.png": png_bytes(),
                                              "__MACOSX/photos/._cat.png": b"\x00\x05\x16\x07",
                                              "photos/._cat.png": b"\x00\x05\x16\x07",
                                              "photos/.DS_Store": b"Bud1",
                                              "photos/Thumbs.db": b"\xd0\xcf"})
    files, notes = decode_uploads([archive], 192)
    assert [f.name for f in files] == ["cat.png"] and notes == []


# --- 17. the CLI falls back to the embedded model like the app ---------------------------------------

def test_cli_caption_with_an_unreachable_hub_model_falls_back_and_exits_0():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "engine", "caption",
                           str(EXAMPLES / "cat.jpg"), "--model", "blip-base"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert row["model"] == "efficientnet_lite0" and "cat" in row["caption"]
    assert row["notes"] == [OFFLINE_MESSAGE] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [
    ["change", str(EXAMPLES / "changes" / "{before}"), str(EXAMPLES / "changes" / "{after}"),
     "--model", "blip-base"],
    ["edit", str(EXAMPLES / "coffee.jpg"), "--text", "make it red", "--model",
     "instruct-pix2pix", "--out", "{tmp}/e.png"],
    ["retrieve", "--gallery", str(ROOT / "assets" / "galleries" / "default"), "--reference",
     str(EXAMPLES / "cat.jpg"), "--text", "in black and white", "--model",
     "openclip-vit-b-32"],
    ["segment", "--support", str(EXAMPLES / "segment" / "support.jpg"),
     str(EXAMPLES / "segment" / "support_mask.png"), "--query",
     str(EXAMPLES / "segment" / "query.jpg"), "--out", "{tmp}/m.png", "--model",
     "smp-convnext-tiny"],
    ["classify", "--support", str(EXAMPLES / "fewshot" / "support"), "--query",
     str(EXAMPLES / "fewshot" / "query" / "cat_query.jpg"), "--model", "openclip-vit-b-32"],
], ids=["change", "edit", "retrieve", "segment", "classify"])
def test_every_cli_model_option_falls_back_like_the_app(capsys, tmp_path, monkeypatch, args):
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path))
    before = min((EXAMPLES / "changes").glob("*_before.jpg"))
    args = [a.format(tmp=tmp_path, before=before.name,
                     after=before.name.replace("_before", "_after")) for a in args]
    status, rows, err = cli(capsys, *args)
    assert status == 0, err
    assert rows and all(r["model"] == "efficientnet_lite0" and OFFLINE_MESSAGE in r["notes"]
                        for r in rows)
    status, rows, err = cli(capsys, *args, "--no-fallback")
    assert status == 2 and rows == [] and "--no-fallback" in err and len(err.splitlines()) == 1


# --- CLI wording met on the way ------------------------------------------------------------------

def test_list_models_with_an_unknown_task_is_a_user_error_listing_the_tasks(capsys):
    status, rows, err = cli(capsys, "list-models", "--task", "foo")
    assert status == 2 and rows == []
    assert err.startswith("error: unknown task 'foo'; valid: ") and "caption" in err
    assert "fewshot-method" in err


def test_a_folder_given_as_an_image_is_named_a_folder(capsys, tmp_path):
    # caption takes folders (their image files); commands that take one image name the folder
    status, rows, err = cli(capsys, "edit", str(EXAMPLES), "--text", "make it red",
                            "--out", str(tmp_path / "out.png"))
    assert status == 2 and rows == [] and "examples is a folder, not an image file" in err
    status, rows, err = cli(capsys, "caption", str(tmp_path))  # a folder without images
    assert status == 2 and rows == [] and "no image files in this folder" in err
    with pytest.raises(ImageInputError, match="is a folder"):
        load_mask(EXAMPLES, size=(4, 4))


def test_segment_out_must_be_a_lossless_image_suffix_and_its_format_is_used(capsys, tmp_path):
    seg = EXAMPLES / "segment"
    base = ["segment", "--support", str(seg / "support.jpg"), str(seg / "support_mask.png"),
            "--query", str(seg / "query.jpg"), "--out"]
    for bad in ("x.txt", "x.jpg"):
        status, rows, err = cli(capsys, *base, str(tmp_path / bad))
        assert status == 2 and rows == [] and "use a .png, .bmp or .tif" in err
        assert not (tmp_path / bad).exists()
    status, _, err = cli(capsys, *base, str(tmp_path / "m.bmp"))
    assert status == 0, err
    written = Image.open(tmp_path / "m.bmp")
    assert written.format == "BMP" and set(np.unique(np.asarray(written))) <= {0, 255}


# --- 10. the gallery selection, without a browser -------------------------------------------------

def test_retrieval_select_takes_a_rank_and_needs_a_search_first():
    import gradio as gr

    from demos import retrieval
    with pytest.raises(gr.Error, match="run a search first"):
        retrieval.select_result([], 1)
    with pytest.raises(gr.Error, match="1 to 2"):
        retrieval.select_result(["a.jpg", "b.jpg"], 3)
    assert retrieval.select_result(["a.jpg", "b.jpg"], 2) == "b.jpg"
    with gr.Blocks() as blocks:
        retrieval.build()
    (public,) = [d for d in blocks.fns.values() if d.api_name == "retrieval_select"]
    assert [type(c).__name__ for c in public.inputs] == ["State", "Number"]
    clicks = [d for d in blocks.fns.values() if d.fn is retrieval.clicked_rank]
    assert len(clicks) == 1 and clicks[0].api_visibility == "private"
