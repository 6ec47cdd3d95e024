"""The papers' optimiser, schedule and data settings as named presets; `fusekit train` options override any field.

A model names its paper's preset in `spec.train_preset`; models without one get ``default``. Learning-rate
schedules are functions of the epoch (applied at the start of each epoch), written as short strings so they can
be given on the command line and recorded in checkpoints:

- ``constant``
- ``step:S:G``      multiply by G every S epochs (FILM: ``step:50:0.5``)
- ``cosine``        cosine decay from lr to 0 over the run
- ``warmup:W:P``    linear from lr to P·lr over W epochs, then linear back to lr at the last epoch (MGFusion)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...errors import UsageError
from ...registry import Registry


@dataclass(frozen=True)
class Preset:
    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: str = "constant"
    epochs: int = 100
    batch_size: int = 8
    crop: int | None = 128  # random square crop side; None: whole images
    resize: str | None = None  # "film": FILM's fixed 288 × 384 training size
    augment: tuple[str, ...] = ("flip",)  # applied after the crop
    grad_clip: float | None = None  # max gradient norm
    source: str = ""  # where the numbers come from

    def with_overrides(self, **overrides) -> "Preset":
        given = {key: value for key, value in overrides.items() if value is not None}
        preset = replace(self, **given)
        schedule_factor(preset.schedule, 0, preset.epochs)  # validates the schedule string
        if preset.optimizer not in ("adam", "adamw"):
            raise UsageError(f"unknown optimizer {preset.optimizer!r}", "use adam or adamw")
        return preset


PRESETS: Registry[Preset] = Registry("training preset")

PRESETS.add("default", Preset(source="fusekit: Adam 1e-4, 128-pixel crops with flips, batch 8"))
PRESETS.add("film", Preset(
    lr=1e-4, schedule="step:50:0.5", epochs=300, batch_size=16, crop=None, resize="film", augment=(),
    source="FILM paper §5: Adam, lr 1e-4 halved every 50 epochs, 300 epochs, batch 16; 384×288 training size",
))
PRESETS.add("film-released", Preset(
    lr=1e-5, schedule="step:50:0.6", epochs=150, batch_size=2, crop=None, resize="film", augment=(),
    source="FILM released train.py defaults: Adam, lr 1e-5, StepLR(50, 0.6), 150 epochs, batch 2",
))
PRESETS.add("mgfusion", Preset(
    lr=1e-4, schedule="warmup:20:10", epochs=100, batch_size=16, crop=256, augment=("flip", "rot90"),
    source="MGFusion §4.1–4.2: Adam, batch 16, 100 epochs, lr 1e-4→1e-3 over 20 epochs then back to 1e-4; 256 crops, flips, rotations",
))
PRESETS.add("mtif", Preset(
    lr=8e-5, schedule="cosine", epochs=100, batch_size=4, crop=None, resize="film", augment=(),
    source="MTIF §5.1: Adam, lr 8e-5 'gradually decayed' (read as cosine), 100 epochs for MEF (45 for MFF: --epochs 45); batch not stated (4)",
))
PRESETS.add("tesg", Preset(
    optimizer="adamw", lr=1e-4, schedule="constant", epochs=140, batch_size=8, crop=96, augment=("flip",),
    source="TeSG §4: AdamW, lr 1e-4, 140 epochs, batch 8, random 96×96 crops",
))


def schedule_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The learning-rate multiplier at the start of `epoch` (0-based) of an `epochs`-long run."""
    name, *args = schedule.strip().lower().split(":")
    try:
        values = [float(a) for a in args]
    except ValueError:
        values = None
    if name == "constant" and not args:
        return 1.0
    if name == "cosine" and not args:
        return 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))
    if name == "step" and values and len(values) == 2 and values[0] >= 1:
        return values[1] ** (epoch // int(values[0]))
    if name == "warmup" and values and len(values) == 2 and values[0] >= 1:
        warm, peak = values
        if epoch < warm:
            return 1 + (peak - 1) * epoch / warm
        rest = max(epochs - warm, 1)
        return peak - (peak - 1) * min(epoch - warm, rest) / rest
    raise UsageError(f"bad schedule {schedule!r}", "use constant, cosine, step:S:G or warmup:W:P")
