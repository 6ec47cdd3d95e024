"""Run the chosen describer backends over an image pair and assemble the descriptions JSON.

Backends are built once (models load lazily on first use) and reused for every item of a batch. Each backend's
output for an image is looked up in / stored to the cache when it is cacheable.
"""

from __future__ import annotations

from ... import log
from ...errors import UsageError
from ...io.formats import ROLES, new_descriptions, sha256_file
from ...io.images import read_image
from .base import DESCRIBERS, PIPELINE_ORDER, DescribeOptions, ImageInfo
from .cache import DescribeCache


def backend_names(backends) -> list[str]:
    """Canonical, de-duplicated backend names in pipeline order; accepts "a,b" strings and lists."""
    names = []
    for entry in backends:
        for part in str(entry).split(","):
            if part.strip():
                names.append(DESCRIBERS.canonical(part))
    if not names:
        names = ["stats"]
    return sorted(set(names), key=PIPELINE_ORDER.index)


class Pipeline:
    """The describer backends of one run, in pipeline order."""

    def __init__(self, backends=("stats",), options: DescribeOptions | None = None):
        self.options = options or DescribeOptions()
        self.names = backend_names(backends)
        self.describers = [DESCRIBERS.get(name)(self.options) for name in self.names]
        self.cache = DescribeCache(self.options.cache_dir) if self.options.cache_dir else None

    def load(self, paths: list[str], task: str, pixels: list | None = None) -> list[ImageInfo]:
        """Read and hash one item's images: a batch runs this in background threads while the models work.

        `pixels`, when the caller has decoded the images already (e.g. `fuse`), saves reading them twice."""
        if any(str(path) == "-" for path in paths):
            raise UsageError("describe reads images from files, not stdin", "give the image paths (descriptions record them)")
        pixels = [read_image(path) for path in paths] if pixels is None else pixels
        images = [ImageInfo(str(path), sha256_file(path), role, task, image) for role, path, image in zip(ROLES, paths, pixels)]
        if len(images) == 2:
            images[0].partner, images[1].partner = images[1], images[0]
        return images

    def describe(self, paths: list[str], task: str, name: str | None = None, images: list[ImageInfo] | None = None) -> dict:
        """Descriptions document for one image (role a) or a pair (roles a, b); `images` from `load` if done already."""
        images = self.load(paths, task) if images is None else images
        for describer in self.describers:
            for image in images:
                image.texts.update(self._run(describer, image))
        document = new_descriptions(
            task,
            self.names,
            {describer.name: describer.model_id for describer in self.describers},
            [
                {"path": image.path, "sha256": image.sha256, "role": image.role,
                 "size": [int(image.pixels.shape[1]), int(image.pixels.shape[0])], "texts": image.texts}
                for image in images
            ],
        )
        if name:
            document["name"] = name
        if self.options.prompt and self.options.prompt.strip():
            document["prompt"] = self.options.prompt.strip()
        return document

    def _run(self, describer, image: ImageInfo) -> dict:
        if self.cache is None or not describer.cached:
            return describer.describe(image)
        extra = describer.cache_key(image)
        found = self.cache.get(describer.name, describer.model_id, image.sha256, extra)
        if found is not None:
            log.debug(f"{image.path}: {describer.name} from cache")
            return found
        texts = describer.describe(image)
        self.cache.put(describer.name, describer.model_id, image.sha256, texts, extra)
        return texts


def describe_pair(path_a, path_b, task: str, backends=("stats",), options: DescribeOptions | None = None,
                  pixels: list | None = None) -> dict:
    """Descriptions document of a pair (``path_b=None`` describes one image); `pixels`: the images, if decoded already."""
    paths = [path_a] if path_b is None else [path_a, path_b]
    pipeline = Pipeline(backends, options)
    return pipeline.describe(paths, task, images=pipeline.load(paths, task, pixels))
