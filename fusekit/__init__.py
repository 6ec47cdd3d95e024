"""fusekit: composable tools for vision-language-model guided image fusion."""

__version__ = "0.1.0"
