"""Editing by text: instruction parsing, object localisation, the offline edit operations, and
the editors (offline, InstructPix2Pix, SD inpainting) behind one ``edit(...)`` interface."""
