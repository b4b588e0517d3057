"""Input rules shared by every task: images (decode-to-decide, bombs, EXIF, RGB on white),
text (cleaning, limits), painted masks and multi-file / zip uploads."""
