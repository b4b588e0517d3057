"""The bad-input cases of ../shared/cases/cases.md and what each must produce, in one place.

Tests of the input module, the CLI and every upload slot of the app iterate over these tables,
so a new slot or tab is covered by adding it to ``app_slots`` in test_app_api.py.
"""
from __future__ import annotations

#: Files that must decode into an RGB image: name -> expected (width, height) after loading.
ACCEPTED = {
    "rgba_transparent_3x5.png": (3, 5),
    "rgba_half_transparent_64.png": (64, 64),
    "gray_L_3x5.png": (3, 5),
    "palette_with_transparency_8.png": (8, 8),
    "one_bit_16.png": (16, 16),
    "exif_orientation6_20x30.jpg": (30, 20),
    "tiny_1x1.png": (1, 1),
    "odd_9x13.png": (9, 13),
    "wide_800x45.png": (800, 45),
    "large_6000x4000.png": (1024, 683),  # downscaled to the working size on load
    "all_black_8.png": (8, 8),
    "all_white_8.png": (8, 8),
    "noise_32.png": (32, 32),
    "animated_2frames_4.gif": (4, 4),
    "image_10x6.png": (10, 6),
}
#: Files that must be refused: name -> words the message must contain (lower case).
REFUSED = {
    "bomb_header_60000x60000.png": ["60000x60000", "megapixels"],
    "truncated_16.jpg": ["truncated or corrupt"],
    "junk_bytes.png": ["not an image"],
    "empty_file.jpg": ["empty file"],
    "html_named.png": ["html"],
    "svg_with_script.svg": ["svg"],
}
