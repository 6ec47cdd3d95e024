"""fusekit: composable tools for vision-language-model guided image fusion."""

from .version import __version__

__all__ = ["__version__"]
