"""Cover images for the cards: only the files the catalog names, from beside the catalog.

A catalog game's ``cover`` names a picture relative to the catalog file's folder (the
package's data folder for the bundled catalog). :func:`read_cover` serves nothing else:
the path must stay inside that folder, carry a picture's suffix, be at most
:data:`MAX_COVER_BYTES` and start with that picture type's signature. The bytes are
read once and sent as read, so the file checked is the file served.
"""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path

from lanspread.core.catalog import Catalog, is_valid_game_id
from lanspread.storage.catalog_file import BUNDLED_SOURCE

# Cover art is a picture of a box, not a data set.
MAX_COVER_BYTES = 8 * 1024 * 1024
COVER_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
# The first bytes of each picture type: a file named .png that is no PNG is not served.
_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_WEBP_TAG = slice(8, 12)


def catalog_folder(catalog: Catalog) -> Path:
    """The folder the catalog's relative paths start from."""
    if catalog.source == BUNDLED_SOURCE:
        return Path(str(resources.files("lanspread.data")))
    return Path(catalog.source).parent


def is_picture(head: bytes, content_type: str) -> bool:
    """``head`` starts like a picture of ``content_type``."""
    if not head.startswith(_SIGNATURES.get(content_type, ())):
        return False
    return content_type != "image/webp" or head[_WEBP_TAG] == b"WEBP"


def read_cover(catalog: Catalog, game_id: str) -> tuple[bytes, str] | None:
    """The cover of ``game_id`` and its content type, or ``None`` (no such picture). Blocking."""
    game = catalog.get(game_id) if is_valid_game_id(game_id) else None
    if game is None or game.cover is None:
        return None
    base = catalog_folder(catalog).resolve()
    path = (base / game.cover).resolve()
    content_type = COVER_TYPES.get(path.suffix.lower())
    if content_type is None or not path.is_relative_to(base):
        return None
    with contextlib.suppress(OSError), path.open("rb") as file:
        body = file.read(MAX_COVER_BYTES + 1)
        if len(body) <= MAX_COVER_BYTES and is_picture(body, content_type):
            return body, content_type
    return None
