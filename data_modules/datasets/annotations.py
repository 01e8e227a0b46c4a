"""Reading annotation, split and class-list files, with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path


class AnnotationError(ValueError):
    """A malformed annotation, split or class-list file.

    Attributes:
        path: the file.
        line: 1-based line number, or None when the problem is the file as a whole.
    """

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


def read_class_list(path: str | Path) -> list[str]:
    """Reads a class list (one name per line; blank lines ignored).

    Raises:
        FileNotFoundError: no such file.
        AnnotationError: duplicate names or an empty list, naming the file and line.
    """
    path = _require_file(Path(path), "class list")
    classes: list[str] = []
    first_line: dict[str, int] = {}
    for line_no, line in enumerate(_read_lines(path), start=1):
        name = line.strip()
        if not name:
            continue
        if name in first_line:
            raise AnnotationError(
                path, line_no, f"duplicate class {name!r} (first on line {first_line[name]})"
            )
        first_line[name] = line_no
        classes.append(name)
    if not classes:
        raise AnnotationError(path, None, "empty class list")
    return classes


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise AnnotationError(path, None, f"not UTF-8 text ({error})") from error


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a file")
    return path
