"""Training fusion models: presets, datasets, guidance for each pair, validation, resumable state and the loop.

The losses and augmentations the papers define live with their models (`fusekit.models.losses`,
`fusekit.models.augment`); this package only runs them.
"""
