"""Many images at once: folders (ImageFolder, galleries) and uploads that may be .zip archives.

Every file is still decoded and checked by :func:`engine.inputs.images.load_image`; the file
suffix only decides which files of a folder are looked at. Zip archives are read in memory
(nothing is extracted to disk), with guards against too many members, too many bytes and
zip bombs.

One skip rule for every folder and zip the product reads (:func:`is_skipped`): hidden entries
(a name starting with ".": macOS's ``._*`` AppleDouble files and ``.DS_Store``) and the folders
and files operating systems add (``__MACOSX/``, ``Thumbs.db``, ``desktop.ini``, ...) are not
user content and are passed over silently.

A zip member that cannot be read (encrypted, an unsupported compression such as Deflate64,
a wrong CRC or truncated data) is skipped and named in one note; the other members are used.
"""
from __future__ import annotations

import contextlib
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from engine.inputs.images import MAX_BYTES, ImageInputError, load_image
from engine.inputs.pool import map_ordered

#: File suffixes a folder is scanned for (each file is still decoded and checked).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
#: Zip guards: members read, total uncompressed bytes, and the largest compression ratio.
MAX_ZIP_MEMBERS, MAX_ZIP_BYTES, MAX_ZIP_RATIO = 2000, 300 * 2**20, 200
#: Names (compared case-insensitively) that operating systems and file managers add to folders
#: and archives; with every hidden name (starting with "."), skipped everywhere.
OS_METADATA_NAMES = frozenset({"__macosx", "thumbs.db", "ehthumbs.db", "desktop.ini",
                               "$recycle.bin", "system volume information"})
#: Compression methods Python's zipfile decompresses (stored, deflate, bzip2, lzma).
READABLE_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                  zipfile.ZIP_LZMA})
#: Names of the other methods (APPNOTE 4.4.5) for the message saying a member was skipped.
_METHOD_NAMES = {1: "Shrink", 6: "Implode", 9: "Deflate64", 10: "PKWARE Implode",
                 18: "IBM TERSE", 19: "IBM LZ77", 93: "Zstandard", 95: "XZ", 96: "JPEG",
                 97: "WavPack", 98: "PPMd"}


def is_skipped(relative: str | PurePosixPath) -> bool:
    """Whether a folder entry or zip member is operating-system metadata or hidden.

    Args:
        relative: the entry's path *relative to the folder or archive being read* ("cat.jpg",
            "__MACOSX/photos/._cat.jpg", "photos\\Thumbs.db"); every part is checked, so pass
            a name, never an absolute path (whose parents may be hidden).

    Returns:
        True for a hidden part (starting with "."; covers ``._*`` and ``.DS_Store``) or a part
        in :data:`OS_METADATA_NAMES` (``__MACOSX``, ``Thumbs.db``, ...).
    """
    parts = PurePosixPath(str(relative).replace("\\", "/")).parts
    return any((p.startswith(".") and p not in (".", ".."))  # "../x.jpg" is a path, not hidden
               or p.casefold() in OS_METADATA_NAMES for p in parts)


def image_files(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image-candidate files of ``folder`` (not recursive; :func:`is_skipped` entries left
    out), sorted."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not is_skipped(p.name) and p.suffix.lower() in suffixes)


def class_folders(root: str | Path) -> list[Path]:
    """Sub-folders of ``root`` that are classes (ImageFolder layout): every directory except
    :func:`is_skipped` ones (``__MACOSX``, hidden), sorted by name."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and not is_skipped(p.name))


def _open_zip(path: str | Path, label: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Open a zip and list its candidate members (files, not :func:`is_skipped`), checking the
    archive's guards before anything is decompressed.

    Raises:
        ImageInputError: not a readable zip, too many members, too large uncompressed, or a
            member too large or too compressed (zip bomb).
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ImageInputError(f"{label} is not a readable zip archive ({exc}).") from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    try:
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ImageInputError(f"{label} holds {len(infos)} files; the limit is "
                                  f"{MAX_ZIP_MEMBERS}.")
        total = sum(i.file_size for i in infos)
        if total > MAX_ZIP_BYTES:
            raise ImageInputError(f"{label} unpacks to {total / 2**20:.0f} MB; the limit is "
                                  f"{MAX_ZIP_BYTES / 2**20:.0f} MB.")
        infos = [i for i in infos if not is_skipped(i.filename) and _member_name(i)]
        for info in infos:
            if info.file_size > MAX_BYTES or (
                    info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO):
                raise ImageInputError(f"{label}: member {_member_name(info)} is too large or "
                                      f"too compressed (zip bomb guard).")
    except ImageInputError:
        zf.close()
        raise
    return zf, infos


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's display name: its base name only (never used as a path)."""
    return PurePosixPath(info.filename.replace("\\", "/")).name


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | str:
    """A member's bytes, or why it cannot be read ("encrypted", "unsupported compression
    (Deflate64)", "corrupt (...)") as one phrase."""
    if info.flag_bits & 0x1:
        return "encrypted (password-protected)"
    if info.compress_type not in READABLE_ZIP_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        return f"unsupported compression ({method}; re-zip it with ordinary Deflate)"
    try:
        with zf.open(info) as fh:
            data = fh.read(MAX_BYTES + 1)
    except NotImplementedError as exc:  # a method this Python lacks (e.g. no bz2 module)
        return f"unsupported compression ({exc})"
    except RuntimeError as exc:  # zipfile's "encrypted, password required"
        return f"encrypted ({exc})"
    except Exception as exc:  # noqa: BLE001 bad CRC (BadZipFile), zlib/lzma/bz2 data errors
        return f"corrupt ({' '.join(str(exc).split()) or type(exc).__name__})"
    if len(data) != info.file_size:
        return "corrupt (its size differs from the archive's directory)"
    return data


def _read_members(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], label: str
                  ) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Readable members (display name, bytes), read in memory, and one note per member skipped
    as unreadable (or one saying the archive holds no file)."""
    out, notes = [], []
    for info in infos:
        data = _read_member(zf, info)
        if isinstance(data, str):
            notes.append(f"{label}: {_member_name(info)} skipped: {data}.")
        else:
            out.append((_member_name(info), data))
    if not infos:
        notes.append(f"{label} holds no files (hidden and system files such as __MACOSX/ "
                     f"are not counted).")
    return out, notes


@dataclass(frozen=True)
class DecodedFile:
    """One usable image of an upload: display ``name``, RGB ``image``, ``sha256`` of its bytes."""

    name: str
    image: Image.Image
    sha256: str


def decode_uploads(paths: list[str | Path], max_side: int, max_images: int | None = None
                   ) -> tuple[list[DecodedFile], list[str]]:
    """Decode uploaded files, each an image or a .zip of images.

    Before anything is decompressed or decoded, the images expected (plain files, and zip
    members with an image suffix) are counted against ``max_images``.

    Args:
        paths: local paths of the uploads.
        max_side: long side (pixels) the images are downscaled to.
        max_images: most images accepted (None: no limit).

    Returns:
        (usable images in upload order, one note per refused file or unreadable zip member
        naming it and why).

    Raises:
        ImageInputError: a zip archive that breaks a guard (see :func:`_open_zip`), or more
            than ``max_images`` images.
    """
    with contextlib.ExitStack() as stack:
        plan: list[tuple[str, str | Path, list[zipfile.ZipInfo] | None, zipfile.ZipFile | None]]
        plan, expected = [], 0
        for local in paths:
            label = Path(local).name
            if zipfile.is_zipfile(local):
                zf, infos = _open_zip(local, label)
                stack.enter_context(zf)
                plan.append((label, local, infos, zf))
                expected += sum(Path(_member_name(i)).suffix.lower() in IMAGE_SUFFIXES
                                for i in infos)
            else:
                plan.append((label, local, None, None))
                expected += 1
        if max_images is not None and expected > max_images:
            raise ImageInputError(f"{expected} images were uploaded; at most {max_images} can "
                                  f"be used (a zip counts its image files).")
        # Entries in upload order: (name, bytes) to decode, or (None, note) for a skipped member.
        entries: list[tuple[str | None, bytes | str]] = []
        for label, local, infos, zf in plan:
            if zf is None:
                entries.append((label, Path(local).read_bytes() if Path(local).is_file() else b""))
            else:
                members, skipped = _read_members(zf, infos, label)
                entries += [(None, note) for note in skipped] + members

    def decode(entry: tuple[str | None, bytes | str]):  # in a worker thread (engine.inputs.pool)
        name, data = entry
        if name is None:
            return None, data
        try:
            image = load_image(data, name=name, max_side=max_side).image
        except ImageInputError as exc:
            return None, str(exc)
        return DecodedFile(name, image, hashlib.sha256(data).hexdigest()), None

    items, notes = [], []
    for item, note in map_ordered(decode, entries):
        if note is not None:
            notes.append(note)
        else:
            items.append(item)
    return items, notes
