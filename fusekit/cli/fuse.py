"""`fusekit fuse`: being written in this session (see the issue tracker)."""

from __future__ import annotations

from ..errors import FusekitError
from . import command


@command("fuse")
def run() -> None:
    """Not available yet."""
    raise FusekitError("'fuse' is not implemented yet", "see the README for what works today")
