"""fusekit's own fusion models, one `FusionModelSpec` each, declared without importing their code.

A spec names its network (`build`), config dataclass (`config`) or fusion function (`fuse_arrays`) as
``"package.module:attribute"``; the module is imported the first time the model is built or run, so `fusekit
models` and the training-free models never import torch. A new method is one module plus one spec here (or, from
another package, one ``fusekit.models`` entry point: docs/PLUGINS.md). The training-free baselines come last,
each task's best first: `fuse` falls back to the first one registered for the task.
"""

from __future__ import annotations

from .registry import FusionModelSpec, register

register(FusionModelSpec(
    name="film",
    summary="FILM (ICML 2024): text-guided fusion network exactly as released; runs the released checkpoints",
    kind="learned",
    tasks=("ivf", "mif", "mef", "mff"),
    paper="Zhao et al., Image Fusion via Vision-Language Model, ICML 2024",
    build="fusekit.models.film:FILM",
    config="fusekit.models.film:FILMConfig",
    guidance=("text",),
    describer="blip2,florence2,sam,llm",
    text_encoder="blip2",
    text_dim=768,
    default_loss="film",
    train_preset="film",
))


register(FusionModelSpec(
    name="tgif",
    summary="TGIF: Restormer encoders guided by cross-attention from the pair's text (text as queries)",
    kind="learned",
    tasks=("ivf", "mif", "mef", "mff"),
    paper="Huang et al., Text-Guided Image Fusion (papers/001)",
    build="fusekit.models.tgif:TGIF",
    config="fusekit.models.tgif:TGIFConfig",
    guidance=("text",),
    describer="blip2,florence2,sam",
    text_encoder="blip2",
    text_dim=768,
    default_loss="film",
    train_preset="film",
))


register(FusionModelSpec(
    name="mtif",
    summary="MTIF: detail/structure/semantic text guides three encoder levels; multi-grained loss",
    kind="learned",
    tasks=("mef", "mff", "ivf", "mif"),
    paper="Tang et al., Multi-Grained Text-Guided Image Fusion (papers/004)",
    build="fusekit.models.mtif:MTIF",
    config="fusekit.models.mtif:MTIFConfig",
    guidance=("text_levels",),
    describer="blip2,llm",
    text_encoder="blip2",
    text_dim=768,
    default_loss="mtif",
    train_preset="mtif",
    train_augment="mtif-enrichment",
))


register(FusionModelSpec(
    name="mgfusion",
    summary="MGFusion: frozen CLIP image features injected into IR/VI features (CII) and weighting their fusion (CFF)",
    kind="learned",
    tasks=("ivf",),
    paper="Yang et al., MGFusion, Front. Neurorobot. 18:1521603 (2024)",
    build="fusekit.models.mgfusion:MGFusion",
    config="fusekit.models.mgfusion:MGFusionConfig",
    guidance=("image_embeds",),
    image_encoder="clip",
    image_dim=512,
    default_loss="mgfusion",
    train_preset="mgfusion",
))


register(FusionModelSpec(
    name="tesg",
    summary="TeSG: diffusion-derived object mask and text semantics guide cross-attention and gated IR/VI fusion",
    kind="learned",
    tasks=("ivf",),
    paper="Zhu et al., TeSG: Textual Semantic Guidance for Infrared and Visible Image Fusion (2025)",
    build="fusekit.models.tesg:TeSG",
    config="fusekit.models.tesg:TeSGConfig",
    guidance=("semantics",),
    default_loss="tesg",
    train_preset="tesg",
))


register(FusionModelSpec(
    name="compact",
    summary="fusekit's compact text-guided network: restoration experts per source switched by the degradations "
            "the text names, FiLM and cross-attention between text and a 1/8-resolution feature map, light full-resolution "
            "conv encoder/decoder; fast on CPU, bundled weights for every task",
    kind="learned",
    tasks=("ivf", "mif", "mef", "mff"),
    paper="fusekit (docs/MODELS.md)",
    build="fusekit.models.compact:CompactFusion",
    config="fusekit.models.compact:CompactConfig",
    guidance=("text",),
    describer="stats",
    text_encoder="offline",
    text_dim=768,
    default_loss="compact",
    train_augment="degrade-{task}",
    tileable=True,
    bundled={task: f"compact_{task}.safetensors" for task in ("ivf", "mif", "mef", "mff")},
))


register(FusionModelSpec(
    name="focus-map",
    summary="focus-measure decision map (sum-modified-Laplacian), majority-vote and small-region consistency "
            "filtering, guided-filter refinement (training-free)",
    kind="training-free",
    tasks=("mff",),
    paper="Nayar & Nakagawa 1994 (SML); He, Sun & Tang, Guided Image Filtering, TPAMI 2013",
    fuse_arrays="fusekit.models.baselines.focus:fuse_arrays",
    colour="rgb",
))


register(FusionModelSpec(
    name="gff",
    summary="guided-filter fusion (GFF): two-scale decomposition, saliency weight maps refined by guided filters "
            "(training-free)",
    kind="training-free",
    tasks=("ivf", "mif"),
    paper="Li, Kang & Hu, Image Fusion with Guided Filtering, IEEE TIP 2013",
    fuse_arrays="fusekit.models.baselines.gff:fuse_arrays",
))


register(FusionModelSpec(
    name="lp",
    summary="Laplacian-pyramid fusion: band coefficients chosen by local activity, low-pass averaged "
            "(training-free)",
    kind="training-free",
    tasks=("ivf", "mif"),
    paper="Burt & Adelson, The Laplacian Pyramid as a Compact Image Code, IEEE TCOM 1983",
    fuse_arrays="fusekit.models.baselines.lp:fuse_arrays",
))


register(FusionModelSpec(
    name="mertens",
    summary="Mertens exposure fusion: contrast, saturation and well-exposedness weights blended in a Laplacian "
            "pyramid (training-free; matches OpenCV's MergeMertens)",
    kind="training-free",
    tasks=("mef",),
    paper="Mertens, Kautz & Van Reeth, Exposure Fusion, Pacific Graphics 2007",
    fuse_arrays="fusekit.models.baselines.mertens:fuse_arrays",
    colour="rgb",
))
