"""The support set of a few-shot task: one type for photos and drawings, and its one validator.

A :class:`SupportSet` is the named classes and their images, kept in the order they were
given (a gallery shows them as added). It is built from (class, images) pairs (the Photos
panel, an ImageFolder on disk) or from one label per image (drawings, Lake et al.'s runs), and
is checked by :func:`validate_support` against :class:`SupportLimits`: the sizes a pipeline
accepts and the words it uses to refuse the rest (photos and drawings explain themselves to
their users differently, in the one-line messages of :class:`~engine.errors.UserInputError`).

    >>> support = SupportSet.from_classes([("cat", [cat1, cat2]), ("coffee", [cup])])
    >>> validate_support(support, PHOTO_LIMITS)          # engine.fewshot.photos
    ['cat', 'coffee']
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from engine.errors import UserInputError
from engine.inputs.files import class_folders, image_files
from engine.inputs.images import DEFAULT_MAX_SIDE, load_image


def clean_name(name: object) -> str:
    """A class name with its spaces collapsed ("  big  cat " -> "big cat"); "" if blank."""
    return " ".join(str(name or "").split())


@dataclass(frozen=True)
class SupportSet:
    """Named classes and their images (immutable: the editing methods return a new set).

    Attributes:
        names: N class names, in order of first appearance.
        images: S images (PIL, any mode), in the order they were added.
        labels: S class indices into ``names``, one per image. A class may (transiently) have
            no image; :func:`validate_support` refuses that.
    """

    names: tuple[str, ...] = ()
    images: tuple[Image.Image, ...] = ()
    labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if any(not 0 <= y < len(self.names) for y in self.labels):
            raise ValueError(f"labels must be in [0, {len(self.names)}), got {self.labels}")

    @classmethod
    def from_classes(cls, classes: Iterable[tuple[str, Sequence[Image.Image]]]) -> "SupportSet":
        """From (class name, images) pairs, in order (names kept as given)."""
        names, images, labels = [], [], []
        for name, imgs in classes:
            names.append(name)
            images += list(imgs)
            labels += [len(names) - 1] * len(imgs)
        return cls(tuple(names), tuple(images), tuple(labels))

    @classmethod
    def from_labels(cls, images: Sequence[Image.Image], labels: Sequence[str],
                    classes: Sequence[str] | None = None) -> "SupportSet":
        """From one label per image; identical labels (spaces collapsed) form one class.

        Args:
            images: S images.
            labels: S class names, one per image.
            classes: optional list of every class the user declared (e.g. an ImageFolder's
                sub-folders), so that a declared class with no image is reported.

        Raises:
            UserInputError: counts differ, a blank label, or a class declared twice.
        """
        if len(images) != len(labels):
            raise UserInputError(f"got {len(images)} support images but {len(labels)} labels; "
                                 "give exactly one label per support image")
        declared = [clean_name(c) for c in classes or []]
        for i, (raw, clean) in enumerate(zip([*(classes or []), *labels],
                                             [*declared, *map(clean_name, labels)])):
            if not clean:
                where = (f"class {i + 1}" if i < len(declared)
                         else f"support image {i + 1 - len(declared)}")
                raise UserInputError(f"{where} has a blank label; give every class a name")
        for i, name in enumerate(declared):
            if name in declared[:i]:
                raise UserInputError(f"class {name!r} is declared twice")
        names = list(declared)
        index = []
        for label in map(clean_name, labels):
            if label not in names:
                names.append(label)
            index.append(names.index(label))
        return cls(tuple(names), tuple(images), tuple(index))

    @property
    def n_classes(self) -> int:
        return len(self.names)

    @property
    def n_images(self) -> int:
        return len(self.images)

    def counts(self) -> list[int]:
        """Images per class, in ``names`` order."""
        return [self.labels.count(c) for c in range(len(self.names))]

    def classes(self) -> list[tuple[str, list[Image.Image]]]:
        """(name, images) per class, in ``names`` order."""
        return [(n, [img for img, y in zip(self.images, self.labels) if y == c])
                for c, n in enumerate(self.names)]

    def items(self) -> list[tuple[Image.Image, str]]:
        """(image, class name) per image, in the order they were added."""
        return [(img, self.names[y]) for img, y in zip(self.images, self.labels)]

    def find(self, name: str) -> str | None:
        """The existing class name equal to ``name`` up to case and spaces, else None."""
        key = clean_name(name).casefold()
        return next((n for n in self.names if clean_name(n).casefold() == key), None)

    def add(self, name: str, images: Sequence[Image.Image]) -> "SupportSet":
        """A new set with ``images`` added to class ``name`` (created if no class has exactly
        this name; use :meth:`find` first to merge names differing only in case)."""
        names = self.names if name in self.names else (*self.names, name)
        label = names.index(name)
        return SupportSet(names, (*self.images, *images), (*self.labels, *[label] * len(images)))

    def remove(self, name: str) -> "SupportSet":
        """A new set without class ``name`` (unchanged if there is none)."""
        if name not in self.names:
            return self
        gone = self.names.index(name)
        kept = [(img, y - (y > gone)) for img, y in zip(self.images, self.labels) if y != gone]
        return SupportSet(tuple(n for n in self.names if n != name),
                          tuple(img for img, _ in kept), tuple(y for _, y in kept))


@dataclass(frozen=True)
class SupportLimits:
    """The support sets a pipeline accepts, and the words it refuses the others with.

    The message templates are ``str.format`` strings; the fields they may use are ``n``
    (classes), ``min`` / ``max`` (class limits), ``name`` / ``count`` (a class and its
    images), ``first`` / ``second`` / ``first_name`` (two clashing classes: indices from 1 and
    the first one's name), ``counts`` ("'A': 1, 'B': 0") and ``max_shots``.

    Attributes:
        max_classes: the most classes (N) accepted; min_classes: the fewest (2).
        max_shots: the most images per class (None: no limit).
        max_images: the most images in all (None: no limit).
        too_few, too_many: fewer than ``min_classes`` / more than ``max_classes`` classes.
        duplicate: two names equal up to case and spaces.
        empty_class: a class with no image.
        no_query: no query image.
        empty: no image at all, reported before the class count (None: the class count says it).
    """

    max_classes: int
    too_few: str
    too_many: str
    duplicate: str
    empty_class: str
    no_query: str
    max_shots: int | None = None
    max_images: int | None = None
    empty: str | None = None
    min_classes: int = 2


def validate_support(support: SupportSet, limits: SupportLimits,
                     shots: int | None = None) -> list[str]:
    """Check a support set and return its cleaned class names.

    Args:
        support: the support set.
        limits: the sizes accepted and the wording of refusals.
        shots: if given, every class needs at least this many images (K of N-way K-shot).

    Returns:
        N class names, spaces collapsed.

    Raises:
        UserInputError: naming the class and the counts: no image, too few or too many
            classes, a blank or duplicate name, a class with no image, fewer than ``shots`` or
            more than ``max_shots`` images, more than ``max_images`` in all.
    """
    names, counts = [clean_name(n) for n in support.names], support.counts()
    fields = {"n": support.n_classes, "min": limits.min_classes, "max": limits.max_classes,
              "max_shots": limits.max_shots, "name": names[0] if names else "",
              "count": counts[0] if counts else 0,
              "counts": ", ".join(f"{n!r}: {c}" for n, c in zip(names, counts))}
    if limits.empty and support.n_images == 0:
        raise UserInputError(limits.empty.format(**fields))
    if support.n_classes < limits.min_classes:
        raise UserInputError(limits.too_few.format(**fields))
    if support.n_classes > limits.max_classes:
        raise UserInputError(limits.too_many.format(**fields))
    seen: dict[str, int] = {}
    for i, (name, count) in enumerate(zip(names, counts), start=1):
        fields.update(name=name, count=count)
        if not name:
            raise UserInputError(f"Class {i} has a blank name; give every class a name.")
        key = name.casefold()
        if key in seen:
            raise UserInputError(limits.duplicate.format(
                **fields, first=seen[key], second=i, first_name=names[seen[key] - 1]))
        seen[key] = i
        if count == 0:
            raise UserInputError(limits.empty_class.format(**fields))
        if shots is not None and count < shots:
            raise UserInputError(f"Class {name!r} has {count} image(s) but {shots}-shot "
                                 f"needs {shots}.")
        if limits.max_shots is not None and count > limits.max_shots:
            raise UserInputError(f"Class {name!r} has {count} images; at most "
                                 f"{limits.max_shots} per class.")
    if limits.max_images is not None and support.n_images > limits.max_images:
        raise UserInputError(f"{support.n_images} support images; at most {limits.max_images}")
    return names


def read_support_folder(root: str | Path, max_side: int | None = DEFAULT_MAX_SIDE) -> SupportSet:
    """Load an ImageFolder-layout support set: one sub-folder of images per class, by name.

    Args:
        root: the folder; hidden and operating-system entries (``__MACOSX/``, ``._*``,
            ``.DS_Store``, ``Thumbs.db``; :func:`engine.inputs.files.is_skipped`) are skipped.
        max_side: long side in pixels images are downscaled to (see ``load_image``).

    Raises:
        UserInputError: the folder does not exist or has no class sub-folder; a bad image
            (``ImageInputError``, naming the file).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"support folder {str(root)!r} does not exist")
    folders = class_folders(root)  # __MACOSX/ and hidden folders are not classes
    if not folders:
        raise UserInputError(f"support folder {str(root)!r} has no class sub-folders")
    return SupportSet.from_classes(
        (f.name, [load_image(p, max_side=max_side).image for p in image_files(f)])
        for f in folders)
