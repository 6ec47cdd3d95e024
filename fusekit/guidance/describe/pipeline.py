"""Run the chosen describer backends over an image pair and assemble the descriptions JSON.

Backends are built once (models load lazily on first use) and reused for every item of a batch. Each backend's
output for an image is looked up in / stored to the cache when it is cacheable.
"""

from __future__ import annotations

from ... import log
from ...errors import UsageError
from ...io.formats import ROLES, new_descriptions, sha256_file
from ...io.images import read_image
from .base import DESCRIBERS, DescribeOptions, ImageInfo, pipeline_rank
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
    return sorted(set(names), key=lambda name: (pipeline_rank(name), name))


class Pipeline:
    """The describer backends of one run, in pipeline order."""

    def __init__(self, backends=("stats",), options: DescribeOptions | None = None):
        self.options = options or DescribeOptions()
        self.names = backend_names(backends)
        self.describers = [DESCRIBERS.get(name)(self.options) for name in self.names]
        self.cache = DescribeCache(self.options.cache_dir) if self.options.cache_dir else None

    def load(self, paths: list[str], task: str, pixels: list | None = None, hashes: list[str] | None = None) -> list[ImageInfo]:
        """Read and hash one item's images: a batch runs this in background threads while the models work.

        `pixels` and `hashes`, when the caller has decoded or hashed the images already (e.g. `fuse`, `train`),
        save doing it twice."""
        if any(str(path) == "-" for path in paths):
            raise UsageError("an image from stdin (-) cannot be described: descriptions record image paths", "give the image's file path")
        pixels = [read_image(path) for path in paths] if pixels is None else pixels
        hashes = [sha256_file(path) for path in paths] if hashes is None else hashes
        images = [ImageInfo(str(path), sha, role, task, image) for role, path, image, sha in zip(ROLES, paths, pixels, hashes)]
        if len(images) == 2:
            images[0].partner, images[1].partner = images[1], images[0]
        return images

    def describe(self, paths: list[str], task: str, name: str | None = None, images: list[ImageInfo] | None = None) -> dict:
        """Descriptions document for one image (role a) or a pair (roles a, b); `images` from `load` if done already."""
        images = self.load(paths, task) if images is None else images
        return self.describe_many([(name, images)], task)[0]

    def describe_many(self, items: list[tuple[str | None, list[ImageInfo]]], task: str) -> list[dict]:
        """Documents for several loaded items (name, images from `load`): each backend sees all their images at once,
        so the LLM can keep --llm-concurrency requests in flight across pairs. Documents come in input order."""
        every = [image for _, images in items for image in images]
        for describer in self.describers:
            for image, texts in zip(every, self._run_all(describer, every)):
                image.texts.update(texts)
        return [self._document(task, name, images) for name, images in items]

    def _document(self, task: str, name: str | None, images: list[ImageInfo]) -> dict:
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

    def _run_all(self, describer, images: list[ImageInfo]) -> list[dict]:
        """One backend's texts for each image: from the cache where it has them, the rest computed together."""
        if self.cache is None or not describer.cached:
            return describer.describe_all(images)
        keys = [describer.cache_key(image) for image in images]
        found = [self.cache.get(describer.name, describer.model_id, image.sha256, key) for image, key in zip(images, keys)]
        todo = [index for index, texts in enumerate(found) if texts is None]
        for index in set(range(len(images))) - set(todo):
            log.debug(f"{images[index].path}: {describer.name} from cache")
        for index, texts in zip(todo, describer.describe_all([images[index] for index in todo]) if todo else []):
            self.cache.put(describer.name, describer.model_id, images[index].sha256, texts, keys[index])
            found[index] = texts
        return found


def describe_pair(path_a, path_b, task: str, backends=("stats",), options: DescribeOptions | None = None,
                  pixels: list | None = None) -> dict:
    """Descriptions document of a pair (``path_b=None`` describes one image); `pixels`: the images, if decoded already."""
    paths = [path_a] if path_b is None else [path_a, path_b]
    pipeline = Pipeline(backends, options)
    return pipeline.describe(paths, task, images=pipeline.load(paths, task, pixels))
