"""What every describer backend shares: its options, the image it is given, and the registry it joins.

A backend turns one image (plus the texts earlier backends wrote about it, and its partner in the pair) into a
dict of texts that is merged into the image's ``texts`` entry of the descriptions JSON. Backends run in the
fixed order of `PIPELINE_ORDER`, so the LLM paragraph writer always sees the caption, dense regions and segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...registry import Registry

if TYPE_CHECKING:
    import numpy as np

# One line per backend: name, class (imported when the backend is used), aliases, and what `describe --list` and
# `describe --help` say about it (`model`: the default weights). Other packages add backends through the
# ``fusekit.describers`` entry-point group (docs/PLUGINS.md).
DESCRIBERS: Registry = Registry("describer backend", "known: {known} (fusekit describe --list)", group="fusekit.describers")
DESCRIBERS.add_lazy("stats", "fusekit.guidance.describe.stats:StatsDescriber", aliases=("offline",), model="",
                    summary="offline and deterministic: exposure, contrast, focus, thermal hotspots and edge density "
                            "measured from the pixels, written as a caption, a paragraph and MTIF's three levels")
DESCRIBERS.add_lazy("blip2", "fusekit.guidance.describe.blip2:Blip2Describer", aliases=("blip",),
                    model="Salesforce/blip2-opt-2.7b", summary="captions")
DESCRIBERS.add_lazy("florence2", "fusekit.guidance.describe.florence2:Florence2Describer", aliases=("florence", "grit"),
                    model="florence-community/Florence-2-large", summary="dense region captions with boxes, the stand-in for GRIT")
DESCRIBERS.add_lazy("sam", "fusekit.guidance.describe.sam:SamDescriber", aliases=("segment-anything",),
                    model="facebook/sam-vit-base", summary="segments from an automatic point grid")
DESCRIBERS.add_lazy("llm", "fusekit.guidance.describe.llm:LLMDescriber", aliases=("chatgpt", "gpt"),
                    model="Qwen/Qwen2.5-1.5B-Instruct",
                    summary="FILM's paragraph and MTIF's three levels written by an LLM from everything above, via an "
                            "OpenAI-compatible endpoint (--llm-url URL --llm-model NAME) or a local transformers causal LM")
DESCRIBERS.add_lazy("vlm", "fusekit.guidance.describe.vlm:VLMDescriber", aliases=("smolvlm", "qwen-vl"),
                    model="HuggingFaceTB/SmolVLM-256M-Instruct",
                    summary="FILM's paragraph and MTIF's three levels from a local vision-language model (transformers "
                            "AutoModelForImageTextToText) that sees the image")
# Later backends refine what earlier ones wrote: a BLIP-2 caption replaces the stats caption, the LLM paragraph
# replaces the stats paragraph, and the LLM (and the local vision-language model) reads everything before it. Plugin backends run just before the LLM.
PIPELINE_ORDER = ("stats", "blip2", "florence2", "sam", "vlm", "llm")


def pipeline_rank(name: str) -> float:
    """Where backend `name` runs in the pipeline (plugins: after the image backends, before the LLM)."""
    return PIPELINE_ORDER.index(name) if name in PIPELINE_ORDER else PIPELINE_ORDER.index("llm") - 0.5


@dataclass
class DescribeOptions:
    """Settings of the model backends; every field has a CLI option of the same name."""

    device: str = "auto"
    precision: str = "fp32"
    model_paths: dict[str, str] = field(default_factory=dict)  # backend → local folder
    model_ids: dict[str, str] = field(default_factory=dict)  # backend → Hugging Face id
    llm_url: str | None = None  # OpenAI-compatible base URL; None = local transformers causal LM
    llm_model: str | None = None
    llm_key_env: str = "OPENAI_API_KEY"
    llm_timeout: float = 60.0
    llm_retries: int = 2
    llm_max_tokens: int = 400
    llm_levels: bool = True  # also ask the LLM for MTIF's three levels
    llm_concurrency: int = 1  # endpoint requests in flight at once
    llm_vision: bool = False  # send the images with the prompt (a multimodal endpoint)
    max_new_tokens: int = 40  # captions and dense captions
    batch_size: int = 1  # images (local LLM: prompts) per forward / generate call of the backends that batch
    sam_points: int = 8  # SAM point grid is sam_points × sam_points
    cache_dir: str | None = None  # None: no cache
    prompt: str | None = None  # the user's own words about the pair ("the visible image is dark and noisy"), kept
    # as the document's `prompt` and appended to every image's text by encode-text (adds to what backends found)


@dataclass
class ImageInfo:
    """One image being described: pixels, identity, and what the backends wrote so far."""

    path: str
    sha256: str
    role: str
    task: str
    pixels: np.ndarray
    partner: "ImageInfo | None" = None
    texts: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)  # per-image values backends share (e.g. the stats measurements)

    def rgb(self) -> np.ndarray:
        """uint8 RGB [H, W, 3], what the vision-language models take."""
        from ...io.images import rgb_of

        return rgb_of(self.pixels)


class Describer:
    """Base of a backend. Subclasses set `name`, `default_model` and implement `describe` (one image) or
    `describe_batch` (up to --batch-size images in one model call)."""

    name = ""
    default_model = ""
    cached = True  # model outputs are cached by image hash + backend + model id

    def __init__(self, options: DescribeOptions):
        self.options = options

    @property
    def model_path(self) -> str | None:
        return self.options.model_paths.get(self.name)

    @property
    def model_id(self) -> str:
        """What the descriptions JSON records: the local folder when given, else the Hugging Face id."""
        return self.model_path or self.options.model_ids.get(self.name) or self.default_model

    def load_with_processor(self, model_class, model_what: str, processor_class, processor_what: str,
                            expect: tuple[str, ...] = ()) -> tuple:
        """(processor, model, device, dtype) for the vision-language backends, which all load the same way.

        The weights come from this backend's --model-path or --model (else `default_model`); the model is moved to
        --device / --precision and put in eval mode. `*_what` name the parts in loading errors; `expect` lists the
        config.json model types the backend can use.
        """
        from ...hub import load_pretrained, model_device

        model_id = self.options.model_ids.get(self.name) or self.default_model
        device, dtype = model_device(self.options)
        model = load_pretrained(model_class.from_pretrained, model_id, self.model_path, model_what, expect)
        processor = load_pretrained(processor_class.from_pretrained, model_id, self.model_path, processor_what)
        return processor, model.to(device=device, dtype=dtype).eval(), device, dtype

    def cache_key(self, image: ImageInfo) -> str:
        """Extra key material beyond image hash + backend + model id (the LLM adds its prompt)."""
        return ""

    def describe(self, image: ImageInfo) -> dict:
        if type(self).describe_batch is Describer.describe_batch:  # neither is overridden: say so, don't recurse
            raise NotImplementedError(f"{type(self).__name__} implements neither describe nor describe_batch")
        return self.describe_batch([image])[0]

    def describe_batch(self, images: list[ImageInfo]) -> list[dict]:
        """Texts for up to --batch-size images; a backend whose model takes a batch in one call overrides this (and
        then need not override `describe`), the others describe one image at a time."""
        return [self.describe(image) for image in images]

    def describe_all(self, images: list[ImageInfo]) -> list[dict]:
        """Texts for several images, in order, --batch-size at a time (the LLM overrides it to batch its requests)."""
        size = max(1, self.options.batch_size)
        return [texts for start in range(0, len(images), size) for texts in self.describe_batch(images[start:start + size])]
