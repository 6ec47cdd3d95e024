"""TeSG's Semantic Information Generator (SIG, §3.2): object masks and text semantics from a caption.

1. Caption T of the visible image (BLIP, Eq. 1), and T̂ = T with the key-object word V* removed.
2. Mask semantics (Eq. 2): noise the image's latent with a frozen Stable Diffusion model, predict the noise under
   T and under T̂ with the UNet, and take the normalised, binarised difference of the two predictions (the idea
   of DiffEdit: the regions where the key word changes the prediction are where the object is). Both images get
   a mask with the same captions and the final mask is their union (Eq. 3).
3. Text semantics: the diffusion model's text encoder applied to T (its last hidden state, [77, D]).

Masks can also come from files (`masks_from_files`), e.g. from a segmentation model, in which case only the text
encoder runs. The result is written as a ``semantics`` file (`write_semantics`), the guidance `fuse` and `train`
give the ``tesg`` model. diffusers is an optional dependency (``pip install fusekit[diffusion]``); it is imported
only here, when a mask is generated.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FusekitError
from ..io.formats import read_safetensors, sha256_file, write_safetensors
from ..io.images import max_value, read_image, to_grey

DEFAULT_DIFFUSION_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"

# Object words of the detection / segmentation classes the paper targets (MSRS: car, person, bike, …; M3FD adds
# truck, bus, motorcycle, lamp), with the synonyms BLIP uses for them; regular plurals match too. The first one
# found in the caption is V*.
DEFAULT_KEYWORDS = (
    "person", "people", "man", "men", "woman", "women", "pedestrian", "boy", "girl", "child", "children", "car",
    "truck", "bus", "van", "vehicle", "motorcycle", "bike", "bicycle", "motorbike", "lamp", "street light",
    "traffic light",
)


@dataclass
class SIGConfig:
    """How the SIG turns a caption into a mask; each field is a reading of §3.2, which gives no numbers.

    keywords: candidate key-object words V*; the one that occurs earliest in the caption is removed (every
        occurrence of it). A caption without any gives an empty mask (no key object).
    resolution: side of the square the image is resized to before the VAE (Stable Diffusion 1.x works at 512).
    strength: how far along the diffusion the image is noised, as a fraction of the training timesteps (DiffEdit's
        0.5: strong enough that the text matters, weak enough that the image still does).
    samples: noise draws whose prediction differences are averaged (DiffEdit uses 10).
    threshold: the normalised difference (min–max to [0, 1]) above which a pixel is in the mask (DiffEdit's 0.5).
    seed: seed of the noise draws, so masks are reproducible.
    """

    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    resolution: int = 512
    strength: float = 0.5
    samples: int = 10
    threshold: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], not {self.strength}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, not {self.samples}")


def _word_pattern(word: str) -> str:
    """`word` as a whole word, with its regular plural (-s / -es)."""
    return rf"\b{re.escape(word)}(?:s|es)?\b"


def remove_keyword(caption: str, keywords: tuple[str, ...] = DEFAULT_KEYWORDS) -> tuple[str, str]:
    """(T̂, V*): `caption` without its key-object word (every occurrence, singular and plural), and that word
    ("" and the caption itself if none occurs)."""
    found: list[tuple[int, str]] = []
    for word in keywords:
        match = re.search(_word_pattern(word), caption, flags=re.IGNORECASE)
        if match:
            found.append((match.start(), word))
    if not found:
        return caption, ""
    _, keyword = min(found, key=lambda hit: (hit[0], -len(hit[1])))
    stripped = re.sub(_word_pattern(keyword), "", caption, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", stripped).strip(), keyword


def binarise(difference: torch.Tensor, threshold: float) -> torch.Tensor:
    """Δ of Eq. 2: min–max normalise to [0, 1], then 1 where above `threshold` (all 0 if the map is flat)."""
    low, high = difference.min(), difference.max()
    if float(high - low) <= 0.0:
        return torch.zeros_like(difference)
    return ((difference - low) / (high - low) > threshold).to(torch.float32)


def union(*masks: torch.Tensor) -> torch.Tensor:
    """M = M_vis ∪ M_ir (Eq. 3): 1 where any mask is 1."""
    if len({tuple(m.shape) for m in masks}) != 1:
        raise FusekitError(f"masks of different sizes {[tuple(m.shape) for m in masks]}", "give masks of the image size")
    out = torch.zeros_like(masks[0], dtype=torch.float32)
    for mask in masks:
        out = torch.maximum(out, (mask > 0.5).to(torch.float32))
    return out


class DiffusionSemantics:
    """The frozen Stable Diffusion parts the SIG uses: tokenizer and text encoder, and — for masks — the VAE, UNet
    and DDIM scheduler (None when the masks come from files)."""

    def __init__(self, text_encoder, tokenizer, model_id: str, config: SIGConfig | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, unet=None, vae=None,
                 scheduler=None):
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.unet, self.vae, self.scheduler = unet, vae, scheduler
        self.model_id = model_id
        self.config = config or SIGConfig()
        self.device, self.dtype = torch.device(device), dtype
        for module in (self.unet, self.vae, self.text_encoder):
            if module is None:
                continue
            module.eval().requires_grad_(False).to(self.device)
            if module.dtype != dtype:
                module.to(dtype)

    @property
    def makes_masks(self) -> bool:
        return self.unet is not None

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike = DEFAULT_DIFFUSION_MODEL, config: SIGConfig | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                        masks: bool = True) -> DiffusionSemantics:
        """Load a diffusers Stable Diffusion folder (``text_encoder/``, ``tokenizer/`` and, with `masks`, ``unet/``,
        ``vae/``, ``scheduler/``) from a local path or the Hugging Face cache. Without `masks` (masks from files)
        diffusers is not needed."""
        from transformers import CLIPTextModel, CLIPTokenizer

        from .. import log
        from ..hub import hub_offline, quiet_transformers

        source = str(model)
        quiet_transformers()
        # A local folder is read as is; a model id comes from the cache, downloaded only when the hub is online.
        common = {"local_files_only": Path(source).is_dir() or hub_offline()}
        try:
            parts = dict(text_encoder=CLIPTextModel.from_pretrained(source, subfolder="text_encoder", dtype=dtype, **common),
                         tokenizer=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **common))
            if masks:
                try:
                    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
                    from diffusers.utils import logging as diffusers_logging
                except ImportError as exc:
                    raise FusekitError("TeSG's mask generator needs diffusers, which is not installed",
                                       "pip install 'fusekit[diffusion]', or give the masks as files (--mask)") from exc
                if log.settings.verbosity < 2:
                    diffusers_logging.set_verbosity_error()
                    diffusers_logging.disable_progress_bar()
                warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")  # diffusers' call into the hub
                parts.update(
                    unet=UNet2DConditionModel.from_pretrained(source, subfolder="unet", torch_dtype=dtype,
                                                              low_cpu_mem_usage=False, **common),
                    vae=AutoencoderKL.from_pretrained(source, subfolder="vae", torch_dtype=dtype,
                                                      low_cpu_mem_usage=False, **common),
                    scheduler=DDIMScheduler.from_pretrained(source, subfolder="scheduler", **common),
                )
        except (OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise FusekitError(
                f"Stable Diffusion weights {source!r} are not available ({reason})",
                f"download them once with 'hf download {source}' or give a local diffusers folder",
            ) from exc
        return cls(**parts, model_id=source, config=config, device=device, dtype=dtype)

    @torch.no_grad()
    def encode_text(self, captions: list[str]) -> torch.Tensor:
        """Text semantics F_t: the text encoder's last hidden state [N, max_length, D] (padded as SD pads)."""
        tokens = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt")
        return self.text_encoder(tokens.input_ids.to(self.device)).last_hidden_state.float()

    @torch.no_grad()
    def noise_difference(self, image: np.ndarray, text: torch.Tensor, text_hat: torch.Tensor) -> torch.Tensor:
        """|ε(x_t, T) − ε(x_t, T̂)|, averaged over latent channels and noise draws, at the image's size [H, W]."""
        config = self.config
        height, width = image.shape[:2]
        pixels = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].expand(1, 3, height, width)
        pixels = F.interpolate(pixels, size=(config.resolution, config.resolution), mode="bilinear", align_corners=False)
        pixels = (pixels * 2 - 1).to(self.device, self.dtype)
        latents = self.vae.encode(pixels).latent_dist.mean * self.vae.config.scaling_factor
        steps = self.scheduler.config.num_train_timesteps
        timestep = torch.tensor([min(steps - 1, int(round(config.strength * steps)))], device=self.device)
        conditions = torch.cat([text, text_hat]).to(self.device, self.dtype)
        generator = torch.Generator("cpu").manual_seed(config.seed)
        total = torch.zeros(latents.shape[-2:], device=self.device)
        for _ in range(config.samples):
            noise = torch.randn(latents.shape, generator=generator).to(self.device, self.dtype)
            noisy = self.scheduler.add_noise(latents, noise, timestep)
            predicted = self.unet(torch.cat([noisy, noisy]), timestep, encoder_hidden_states=conditions).sample
            total += (predicted[0] - predicted[1]).float().abs().mean(dim=0)
        difference = (total / config.samples)[None, None]
        return F.interpolate(difference, size=(height, width), mode="bilinear", align_corners=False)[0, 0].cpu()

    def mask(self, image: np.ndarray, caption: str, caption_hat: str) -> torch.Tensor:
        """M of Eq. 2 for one grey image in [0, 1]: binary float32 [H, W]."""
        if not self.makes_masks:
            raise ValueError("this DiffusionSemantics was loaded without the UNet (masks=False)")
        if caption == caption_hat:  # no key object named: nothing to single out
            return torch.zeros(image.shape[:2], dtype=torch.float32)
        text = self.encode_text([caption, caption_hat])
        return binarise(self.noise_difference(image, text[:1], text[1:]), self.config.threshold)


def load_grey(path: str | os.PathLike) -> np.ndarray:
    """An image as grey float32 [H, W] in [0, 1] (BT.601, fusekit's grey convention)."""
    image = read_image(path)
    return to_grey(image) / np.float32(max_value(image))


def masks_from_files(paths: list[str | os.PathLike], size: tuple[int, int]) -> torch.Tensor:
    """The union of mask images (any non-zero pixel is in the mask); each must be `size` (H, W)."""
    masks = []
    for path in paths:
        grey = to_grey(read_image(path), rounded=False)
        if grey.shape[:2] != tuple(size):
            raise FusekitError(f"mask {path} is {grey.shape[1]}x{grey.shape[0]}, the images are {size[1]}x{size[0]}",
                               "give a mask of the same size as the images")
        masks.append(torch.from_numpy((grey > 0).astype(np.float32)))
    return union(*masks)


def generate_semantics(path_a: str | os.PathLike, path_b: str | os.PathLike, caption: str,
                       diffusion: DiffusionSemantics, mask_files: list[str | os.PathLike] | None = None
                       ) -> tuple[dict[str, torch.Tensor], dict]:
    """The SIG for one IVF pair (A = infrared, B = visible) and the visible image's caption T.

    Returns the ``semantics`` tensors (``mask`` [H, W] float32 0/1, ``text_semantics`` [L, D]) and metadata.
    With `mask_files` the mask is their union and no diffusion step runs.
    """
    grey_a, grey_b = load_grey(path_a), load_grey(path_b)
    if grey_a.shape != grey_b.shape:
        raise FusekitError(f"{path_a} and {path_b} differ in size", "the two images of a pair must be registered")
    caption_hat, keyword = remove_keyword(caption, diffusion.config.keywords)
    if mask_files:
        mask = masks_from_files(list(mask_files), grey_a.shape)
    else:
        mask = union(diffusion.mask(grey_b, caption, caption_hat), diffusion.mask(grey_a, caption, caption_hat))
    text = diffusion.encode_text([caption])[0]
    metadata = {
        "encoder_model": diffusion.model_id,
        "dim": str(text.shape[-1]),
        "image_sha256_a": sha256_file(path_a),
        "image_sha256_b": sha256_file(path_b),
        "caption": caption,
        "keyword": keyword,
        "mask_source": "files" if mask_files else "diffusion",
        "sig_config": asdict(diffusion.config),
    }
    return {"mask": mask, "text_semantics": text}, metadata


def write_semantics(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """Write a ``semantics`` file atomically."""
    write_safetensors(path, "semantics", tensors, metadata)


def read_semantics(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a ``semantics`` file, with its tensors checked."""
    tensors, metadata = read_safetensors(path, "semantics")
    source = str(Path(path))
    mask, text = tensors.get("mask"), tensors.get("text_semantics")
    if mask is None or mask.ndim != 2 or text is None or text.ndim != 2:
        raise FusekitError(f"{source}: needs 'mask' [H, W] and 'text_semantics' [L, D]", "re-make it with the TeSG SIG")
    return tensors, metadata
