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
from engine.inputs.text import name_key, normalize_name

#: A class name as shown: NFC, spaces collapsed ("  big  cat " -> "big cat"); "" if blank.
clean_name = normalize_name


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
        """From one label per image; identical labels (after :func:`clean_name`) form one class.

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
        """The existing class name equal to ``name`` up to case, spaces and Unicode form
        (:func:`engine.inputs.text.name_key`), else None."""
        key = name_key(name)
        return next((n for n in self.names if name_key(n) == key), None)

    def add(self, name: str, images: Sequence[Image.Image]) -> "SupportSet":
        """A new set with ``images`` added to class ``name`` (created if no class has this name
        after :func:`clean_name`; use :meth:`find` first to merge names differing in case, or
        :func:`check_addition` to apply a pipeline's limits)."""
        name = clean_name(name)
        same = [n for n in self.names if clean_name(n) == name]
        name = same[0] if same else name
        names = self.names if same else (*self.names, name)
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
        duplicate: two names equal up to case, spaces and Unicode form (same
            :func:`~engine.inputs.text.name_key`).
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
        N class names after :func:`clean_name` (NFC, spaces collapsed).

    Raises:
        UserInputError: naming the class and the counts: no image, too few or too many
            classes, a blank or duplicate name (equal :func:`~engine.inputs.text.name_key`:
            case, spaces, NFC/NFD and full-width forms do not count), a class with no image,
            fewer than ``shots`` or more than ``max_shots`` images, more than ``max_images``.
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
        key = name_key(name)
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


def check_addition(support: SupportSet, name: str, count: int, limits: SupportLimits, *,
                   merge_case: bool = True) -> str:
    """Check, before it is done, that ``count`` images may be added to class ``name``.

    The same limits :func:`validate_support` applies at classification time, applied when a
    user adds to the set (the app's "Add" buttons), so a set is never built that the classifier
    will refuse.

    Args:
        support: the set before the addition.
        name: the class name typed by the user (non-blank).
        count: images about to be added (>= 1).
        limits: the pipeline's limits.
        merge_case: True: a name equal to an existing class up to case, spaces and Unicode form
            (same :func:`~engine.inputs.text.name_key`) adds to that class (photos: "cat" and
            "Cat" are one class). False: only a name equal after :func:`clean_name` (NFC,
            spaces) does; one differing in case or compatibility form is refused with
            ``limits.duplicate`` (drawings: "A" and "a" may be meant as two symbols, and the
            models cannot tell the user which was used).

    Returns:
        The class name to pass to :meth:`SupportSet.add`: the existing class's own spelling,
        or ``clean_name(name)`` for a new class.

    Raises:
        UserInputError: a duplicate name (``merge_case=False``), one class more than
            ``limits.max_classes``, more than ``max_shots`` images in the class or more than
            ``max_images`` in all.
    """
    clean = clean_name(name)
    existing = support.find(clean)
    if existing is not None and not merge_case and clean_name(existing) != clean:
        first = support.names.index(existing) + 1
        raise UserInputError(limits.duplicate.format(
            n=support.n_classes + 1, min=limits.min_classes, max=limits.max_classes,
            max_shots=limits.max_shots, name=clean, count=count, counts="",
            first=first, second=support.n_classes + 1, first_name=existing))
    if existing is None and support.n_classes >= limits.max_classes:
        raise UserInputError(f"The support set already has {support.n_classes} classes, the "
                             f"most this model takes; remove one before adding {clean!r}.")
    have = support.counts()[support.names.index(existing)] if existing is not None else 0
    if limits.max_shots is not None and have + count > limits.max_shots:
        raise UserInputError(f"Class {existing or clean!r} would have {have + count} images; "
                             f"the limit is {limits.max_shots} per class.")
    if limits.max_images is not None and support.n_images + count > limits.max_images:
        raise UserInputError(f"The support set already has {support.n_images} images; at most "
                             f"{limits.max_images} in all.")
    return existing if existing is not None else clean

def read_support_folder(root: str | Path, max_side: int | None = DEFAULT_MAX_SIDE) -> SupportSet:
    """Load an ImageFolder-layout support set: one sub-folder of images per class, by name.

    Args:
        root: the folder; hidden and operating-system entries (``__MACOSX/``, ``._*``,
            ``.DS_Store``, ``Thumbs.db``; :func:`engine.inputs.files.is_skipped`) are skipped.
        max_side: long side in pixels images are downscaled to (see ``load_image``).

    Class names are the folder names after :func:`clean_name` (NFC, spaces collapsed).

    Raises:
        UserInputError: the folder does not exist or has no class sub-folder; two folders
            name one class (equal up to case, spaces and Unicode form); a bad image
            (``ImageInputError``, naming the file).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"support folder {str(root)!r} does not exist")
    folders = class_folders(root)  # __MACOSX/ and hidden folders are not classes
    if not folders:
        raise UserInputError(f"support folder {str(root)!r} has no class sub-folders")
    seen: dict[str, str] = {}
    for f in folders:  # macOS writes NFD file names; "Cat" and "cat" can both exist on Linux
        other = seen.setdefault(name_key(f.name), f.name)
        if other != f.name:
            raise UserInputError(
                f"support folders {other!r} and {f.name!r} are one class name (equal up to "
                f"case, spaces and Unicode form: {other!a} vs {f.name!a}); merge "
                f"them or rename one")
    return SupportSet.from_classes(
        (clean_name(f.name), [load_image(p, max_side=max_side).image for p in image_files(f)])
        for f in folders)
