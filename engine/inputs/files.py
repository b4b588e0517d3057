"""Many images at once: folders (ImageFolder, galleries) and uploads that may be .zip archives.

Every file is still decoded and checked by :func:`engine.inputs.images.load_image`; the file
suffix only decides which files of a folder are looked at. Zip archives are read in memory
(nothing is extracted to disk), with guards against too many members, too many bytes and
zip bombs.
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engine.inputs.images import MAX_BYTES, ImageInputError, load_image
from engine.inputs.pool import map_ordered

#: File suffixes a folder is scanned for (each file is still decoded and checked).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
#: Zip guards: members read, total uncompressed bytes, and the largest compression ratio.
MAX_ZIP_MEMBERS, MAX_ZIP_BYTES, MAX_ZIP_RATIO = 2000, 300 * 2**20, 200


def image_files(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image-candidate files of ``folder`` (not recursive, hidden files skipped), sorted."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in suffixes)


def _zip_members(path: str | Path, label: str) -> list[tuple[str, bytes]]:
    """Image-candidate members of a zip as (file name, bytes), read in memory.

    Raises:
        ImageInputError: not a readable zip, too many members, too large uncompressed, a member
            too large or too compressed (zip bomb), or a member not matching its declared size.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageInputError(f"{label} is not a readable zip archive ({exc}).") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ImageInputError(f"{label} holds {len(infos)} files; the limit is "
                                  f"{MAX_ZIP_MEMBERS}.")
        total = sum(i.file_size for i in infos)
        if total > MAX_ZIP_BYTES:
            raise ImageInputError(f"{label} unpacks to {total / 2**20:.0f} MB; the limit is "
                                  f"{MAX_ZIP_BYTES / 2**20:.0f} MB.")
        out = []
        for info in infos:
            name = Path(info.filename.replace("\\", "/")).name  # display only; never a path
            if not name or name.startswith("."):
                continue
            if info.file_size > MAX_BYTES or (
                    info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO):
                raise ImageInputError(f"{label}: member {name} is too large or too compressed "
                                      f"(zip bomb guard).")
            with zf.open(info) as fh:
                data = fh.read(MAX_BYTES + 1)
            if len(data) != info.file_size:
                raise ImageInputError(f"{label}: member {name} does not match its declared "
                                      f"size.")
            out.append((name, data))
    return out


@dataclass(frozen=True)
class DecodedFile:
    """One usable image of an upload: display ``name``, RGB ``image``, ``sha256`` of its bytes."""

    name: str
    image: Image.Image
    sha256: str


def decode_uploads(paths: list[str | Path], max_side: int) -> tuple[list[DecodedFile], list[str]]:
    """Decode uploaded files, each an image or a .zip of images.

    Args:
        paths: local paths of the uploads.
        max_side: long side (pixels) the images are downscaled to.

    Returns:
        (usable images in upload order, one note per refused file naming it and why).

    Raises:
        ImageInputError: a zip archive that breaks a guard (see :func:`_zip_members`).
    """
    def members():
        for local in paths:
            label = Path(local).name
            yield from (_zip_members(local, label) if zipfile.is_zipfile(local)
                        else [(label, Path(local).read_bytes() if Path(local).is_file() else b"")])

    def decode(member: tuple[str, bytes]):  # in a worker thread (engine.inputs.pool)
        name, data = member
        try:
            image = load_image(data, name=name, max_side=max_side).image
        except ImageInputError as exc:
            return None, str(exc)
        return DecodedFile(name, image, hashlib.sha256(data).hexdigest()), None

    items, notes = [], []
    for item, note in map_ordered(decode, members()):
        if note is not None:
            notes.append(note)
        else:
            items.append(item)
    return items, notes
