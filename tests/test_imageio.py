"""Every case of ../shared/cases through the one image-input module."""
from __future__ import annotations

import numpy as np
import pytest
from cases import ACCEPTED, REFUSED
from PIL import Image

from engine.inputs.images import BACKGROUND, ImageInputError, load_image, load_mask, to_rgb


@pytest.mark.parametrize("name,size", sorted(ACCEPTED.items()))
def test_accepted_cases_load_as_rgb_of_expected_size(cases_dir, name, size):
    loaded = load_image(cases_dir / name)
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == size
    assert np.isfinite(np.asarray(loaded.image, dtype=np.float32)).all()


@pytest.mark.parametrize("name,words", sorted(REFUSED.items()))
def test_refused_cases_name_the_file_and_its_problem(cases_dir, name, words):
    with pytest.raises(ImageInputError) as info:
        load_image(cases_dir / name)
    message = str(info.value)
    assert name in message
    for word in words:
        assert word in message.lower()


def test_type_is_decided_by_content_not_name(cases_dir, tmp_path):
    real_png = (cases_dir / "odd_9x13.png").read_bytes()
    disguised = tmp_path / "photo.svg"
    disguised.write_bytes(real_png)
    assert load_image(disguised).image.size == (9, 13)


def test_exif_orientation_puts_red_band_on_the_right(cases_dir):
    arr = np.asarray(load_image(cases_dir / "exif_orientation6_20x30.jpg").image).astype(int)
    right, left = arr[:, -3:].mean((0, 1)), arr[:, :3].mean((0, 1))
    assert right[0] > 200 and right[2] < 60  # red
    assert left[2] > 200 and left[0] < 60  # blue


def test_transparency_is_composited_onto_white(cases_dir):
    arr = np.asarray(load_image(cases_dir / "rgba_half_transparent_64.png").image)
    assert tuple(arr[32, 32]) == BACKGROUND  # the transparent hole
    assert tuple(arr[2, 2]) == (0, 128, 255)  # opaque blue border stays


def test_animated_gif_uses_first_frame(cases_dir):
    loaded = load_image(cases_dir / "animated_2frames_4.gif")
    assert tuple(np.asarray(loaded.image)[0, 0]) == (255, 0, 0)
    assert any("first frame" in n for n in loaded.notes)


def test_large_image_is_downscaled_and_says_so(cases_dir):
    loaded = load_image(cases_dir / "large_6000x4000.png")
    assert loaded.original_size == (6000, 4000)
    assert max(loaded.image.size) == 1024
    assert any("downscaled" in n for n in loaded.notes)


def test_bomb_is_refused_before_allocation(cases_dir):
    import tracemalloc
    tracemalloc.start()
    with pytest.raises(ImageInputError):
        load_image(cases_dir / "bomb_header_60000x60000.png")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing close to 60000*60000*3 bytes


def test_oversized_upload_is_refused(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * 2048)
    with pytest.raises(ImageInputError, match="limit"):
        load_image(big, max_bytes=1024)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_every_pillow_mode_becomes_rgb(mode):
    img = Image.new(mode, (5, 4))
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == (5, 4)


def test_float_and_gray_arrays_are_accepted():
    assert load_image(np.zeros((4, 6), np.float32)).image.size == (6, 4)
    assert load_image(np.ones((4, 6, 1), np.float64)).image.getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ImageInputError, match="shape"):
        load_image(np.zeros((4, 6, 5), np.uint8))


def test_mask_size_mismatch_is_resized_nearest(cases_dir):
    mask = load_mask(cases_dir / "mask_5x3.png", size=(10, 6))
    assert mask.shape == (6, 10) and mask.dtype == bool and mask.all()


def test_empty_mask_is_refused_full_mask_works(cases_dir):
    with pytest.raises(ImageInputError, match="empty"):
        load_mask(cases_dir / "mask_empty_10x6.png", size=(10, 6))
    assert load_mask(cases_dir / "mask_empty_10x6.png", size=(10, 6), allow_empty=True).sum() == 0
    assert load_mask(cases_dir / "mask_full_10x6.png", size=(10, 6)).all()


def test_rgba_editor_mask_selects_painted_pixels():
    layer = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (2, 2, 5, 5))
    mask = load_mask(layer, size=(8, 8))
    assert mask.sum() == 9 and mask[3, 3] and not mask[0, 0]


def test_a_cielab_tiff_loads_as_an_image_and_as_a_mask(tmp_path):
    """Pillow cannot convert LAB to RGB itself: the loader converts through a colour profile
    (was an internal error when such a file was painted as a mask layer)."""
    rgb = Image.new("RGB", (20, 10), (250, 250, 250))
    rgb.paste((10, 10, 10), (0, 0, 10, 10))  # dark left half
    path = tmp_path / "lab.tiff"
    rgb.convert("LAB").save(path)
    img = load_image(path).image
    assert img.mode == "RGB" and img.size == (20, 10)
    assert img.getpixel((15, 5))[0] > 200 and img.getpixel((2, 5))[0] < 60
    mask = load_mask(path, size=(20, 10), allow_empty=True)
    assert mask[:, 10:].all() and not mask[:, :10].any()  # bright = selected, as for gray masks


def test_a_colour_mode_that_cannot_be_converted_is_refused_with_its_name(monkeypatch):
    from engine.inputs import images
    monkeypatch.setattr(images, "to_rgb", lambda image: (_ for _ in ()).throw(
        ValueError("conversion from XYZ to RGB not supported")))
    with pytest.raises(ImageInputError, match="colour mode RGB, which cannot be converted"):
        load_image(Image.new("RGB", (4, 4)))
