"""A tiny third-party fusekit plugin, written into a test's temporary folder: a package plus the
``*.dist-info`` (METADATA + entry_points.txt) that an installed wheel would leave, so `importlib.metadata`
finds its entry points once the folder is on sys.path / PYTHONPATH.

It adds a training-free fusion model (``demo-mean``: the average of A and B), a describer backend
(``demo-words``: a fixed caption plus the image's mean grey level), a text encoder (``demo-ones``) and a metric
(``DemoMean``: the fused image's mean grey level / 255) — one of each kind fusekit has an entry-point group for.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

DISTRIBUTION = "fusekit-demo-plugin"
MODULE = "fusekit_demo_plugin"
CAPTION = "a demo caption from the plugin"

SOURCE = textwrap.dedent(f'''
    """fusekit demo plugin: importing it must not need torch."""
    import numpy as np

    from fusekit.guidance.describe.base import Describer
    from fusekit.guidance.text.base import TextEncoder
    from fusekit.metrics.registry import Definition, Metric
    from fusekit.models.registry import FusionModelSpec


    def mean_fusion(a, b, task):
        return (np.asarray(a, dtype=np.float32) + np.asarray(b, dtype=np.float32)) / np.float32(2)


    SPEC = FusionModelSpec(name="demo-mean", summary="average of A and B (demo plugin)", kind="training-free",
                           tasks=("ivf", "mif"), fuse_arrays=mean_fusion)


    class WordsDescriber(Describer):
        """A fixed caption and the mean grey level (demo plugin)."""

        name = "demo-words"
        default_model = "demo/words-1"
        cached = False

        def describe(self, image):
            return {{"caption": "{CAPTION}", "demo_mean": float(np.mean(image.pixels))}}


    class OnesEncoder(TextEncoder):
        """One row of ones per word (demo plugin)."""

        name = "demo-ones"
        default_model = "demo/ones-1"

        @property
        def dim(self):
            return 4

        def encode(self, texts):
            return [np.ones((1 + len(text.split()), 4), dtype=np.float32) for text in texts]


    DEMO_MEAN = Metric("DemoMean", "mean grey level of F / 255 (demo plugin)", True, ("fused",),
                       definitions={{"evaluator": Definition("evaluator", lambda triple: float(np.mean(triple.f)) / 255.0,
                                                            "mean of F", (0.0, 1.0))}})
''')

ENTRY_POINTS = textwrap.dedent(f"""
    [fusekit.models]
    demo-mean = {MODULE}:SPEC

    [fusekit.describers]
    demo-words = {MODULE}:WordsDescriber

    [fusekit.text_encoders]
    demo-ones = {MODULE}:OnesEncoder

    [fusekit.metrics]
    DemoMean = {MODULE}:DEMO_MEAN
""")


def write_plugin(folder: Path, extra_entry_points: str = "") -> Path:
    """Write the plugin into `folder` (put it on sys.path or PYTHONPATH) and return `folder`."""
    (folder / MODULE).mkdir(parents=True)
    (folder / MODULE / "__init__.py").write_text(SOURCE)
    info = folder / f"{MODULE}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS + extra_entry_points)
    return folder
