"""Running under `torchrun`: one process per GPU (or per CPU slot with gloo), DistributedDataParallel semantics.

`fusekit train` needs no launcher of its own: started by ``torchrun --nproc_per_node N -m fusekit train ...`` (or
across nodes from SLURM, examples/slurm/train.sbatch) it finds ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the
environment, joins the process group (NCCL on CUDA, gloo on the CPU) and uses ``cuda:LOCAL_RANK``. Only rank 0
logs, validates and writes checkpoints; the others wait at barriers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...devices import resolve_device
from ...errors import FusekitError


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: object = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup(device_spec: str) -> Context:
    """Join the process group when launched by torchrun; pick this process's device."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=resolve_device(device_spec))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise FusekitError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s)", "start at most one process per GPU (--nproc_per_node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    import torch.distributed as td

    if not td.is_initialized():
        td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank=rank, world=world, local_rank=local_rank, device=device)


def teardown(ctx: Context) -> None:
    if ctx.distributed:
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        import torch.distributed as td

        td.barrier()


def mean(ctx: Context, values: list[float]) -> list[float]:
    """The mean of each value over all processes (for logging losses that DDP averaged in the gradients)."""
    if not ctx.distributed:
        return values
    import torch
    import torch.distributed as td

    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device if ctx.device.type == "cuda" else "cpu")
    td.all_reduce(tensor)
    return (tensor / ctx.world).tolist()


def any_true(ctx: Context, flag: bool) -> bool:
    """Whether `flag` is set on any process (all stop together when one is told to stop)."""
    if not ctx.distributed:
        return flag
    import torch
    import torch.distributed as td

    tensor = torch.tensor([1.0 if flag else 0.0], device=ctx.device if ctx.device.type == "cuda" else "cpu")
    td.all_reduce(tensor, op=td.ReduceOp.MAX)
    return bool(tensor.item() > 0)
