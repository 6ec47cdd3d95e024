"""`fusekit encode-image`: being written in this session (see the issue tracker)."""

from __future__ import annotations

from ..errors import FusekitError
from . import command


@command("encode-image")
def run() -> None:
    """Not available yet."""
    raise FusekitError("'encode-image' is not implemented yet", "see the README for what works today")
