"""Loading the catalog: the bundled one shipped in the package, or the user's own file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lanspread.core.catalog import Catalog, parse_catalog
from lanspread.errors import CatalogError

BUNDLED_SOURCE = "<bundled catalog>"
# A catalog is metadata only; a multi-megabyte file is a mistake, not a catalog.
MAX_CATALOG_FILE_SIZE = 8 * 1024 * 1024


def load_bundled_catalog() -> Catalog:
    text = resources.files("lanspread.data").joinpath("catalog.toml").read_text("utf-8")
    return parse_catalog(text, BUNDLED_SOURCE)


def load_catalog_file(path: Path) -> Catalog:
    try:
        size = path.stat().st_size
        if size > MAX_CATALOG_FILE_SIZE:
            raise CatalogError(f"{path}: {size} bytes is larger than a catalog can be")
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_catalog(text, str(path))


def load_catalog(path: Path | None) -> Catalog:
    """The user's catalog when ``path`` is given, else the bundled one."""
    return load_bundled_catalog() if path is None else load_catalog_file(path)
