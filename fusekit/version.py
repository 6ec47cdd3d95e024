"""fusekit's version, in a module of its own so the lowest layer (`fusekit.io`) can stamp files without importing
the package root."""

__version__ = "0.1.0"
