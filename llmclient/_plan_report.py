"""The plan's report: the chosen setting as a `Plan`, each other candidate's reason for losing, and the error that
says what would fit when nothing does."""

from __future__ import annotations

from collections.abc import Callable

from llmclient._fit import FLOOR_CTX, UNKNOWN_TRAINED_CTX, Budget, Est, Option, info_for, largest, threads_for
from llmclient.errors import InsufficientMemoryError
from llmclient.estimate import layer_devices
from llmclient.hardware import Hardware
from llmclient.quants import quality_rank
from llmclient.types import ModelFile, Plan, Rejected, format_gb

__all__ = ["make_plan", "nothing_fits"]


def nothing_fits(
    candidates: list[ModelFile], budget: Budget, est: Est, ctx_range: Callable[[ModelFile], tuple[int, int]],
    with_gpu: bool, asked: bool, n_gpu_layers: int | None,
) -> InsufficientMemoryError:  # fmt: skip
    """The error when no candidate fits even at the smallest context: what the smallest needs, what would fit."""
    smallest = min(candidates, key=lambda c: c.size)
    target, _ = ctx_range(smallest)
    ctx = target if asked else min(target, FLOOR_CTX)
    need = est(smallest, ctx, 0)
    available = budget.ram + sum(budget.gpus)
    where = f"{format_gb(budget.ram)} of RAM" + (
        f" and {format_gb(sum(budget.gpus))} of GPU memory" if with_gpu else ""
    )
    if n_gpu_layers is not None and with_gpu:
        message = (
            f"{n_gpu_layers} offloaded layers (.gpu_layers) do not fit in {format_gb(sum(budget.gpus))} of GPU memory "
            f"with any file of this model at {ctx} tokens; ask for fewer, or leave it to the planner. "
        )
    else:
        message = (
            f"no file of this model fits here: the smallest, {smallest.filename} ({smallest.quant_name}), needs "
            f"{format_gb(need.total)} at {ctx} tokens of context, but the budget is {where} (after the safety margin). "
        )
    fixed = need.cpu - need.kv_cache
    fits_ctx = largest(1, max(ctx, 1), lambda x: fixed + est(smallest, x, 0).kv_cache <= budget.ram)
    if fits_ctx is not None and fits_ctx < ctx:
        message += f"It would fit with a context of {fits_ctx} tokens (.ctx({fits_ctx})). "
    message += (
        "Choose a smaller model or quant, close other programs to free memory, or set a larger budget with "
        ".memory_gb() / LLMCLIENT_MEMORY_GB if the detected memory is wrong."
    )
    return InsufficientMemoryError(message, needed=need.total, available=available)


def make_plan(
    chosen: Option,
    candidates: list[ModelFile],
    budget: Budget,
    hardware: Hardware,
    est: Est,
    ctx_range: Callable[[ModelFile], tuple[int, int]],
    how: str,
    threads: int | None,
    flash_attn: bool,
    kv_type: str,
    split: tuple[float, ...],
    asked: bool,
) -> Plan:
    """`chosen` as a `Plan`: its device and threads, why every other candidate lost, and notes on the context."""
    info, n_all = chosen.info, chosen.info.block_count + 1
    full = chosen.n_gpu_layers >= n_all
    gpus = hardware.gpus if split else ()
    rejected = []
    offloading = bool(split) and chosen.n_gpu_layers > 0
    for c in candidates:
        if c is chosen.file:
            continue
        c_info = info_for(c, info)
        e = est(c, chosen.n_ctx, c_info.block_count + 1 if offloading else 0)
        if quality_rank(c.quant) < quality_rank(chosen.file.quant):
            where = "GPU memory" if offloading else "RAM"
            reason = f"better, but does not fit{' fully' if offloading else ''} in {where} at {chosen.n_ctx} tokens"
        elif quality_rank(c.quant) == quality_rank(chosen.file.quant):
            reason = "same quant, larger file"
        else:
            reason = f"lower quality than {chosen.file.quant_name}"
        rejected.append(Rejected(c, e.n_ctx, sum(e.gpu), e.cpu, reason))
    notes = [how]
    hi, _ = ctx_range(chosen.file)
    trained = info.context_length or UNKNOWN_TRAINED_CTX
    if chosen.n_ctx < hi:
        notes.append(f"context reduced to {chosen.n_ctx} tokens (from {hi}) to fit")
    elif asked and chosen.n_ctx > trained:
        notes.append(f"the asked context exceeds the trained length ({trained}); quality may suffer beyond it")
    elif not asked and hi < trained:
        notes.append(f"context capped at {hi} tokens (trained: {trained}); ask for more with .ctx(n)")
    if not info.context_length:
        notes.append(f"the file does not state its trained context; assumed {UNKNOWN_TRAINED_CTX}")
    if gpus and chosen.n_gpu_layers:
        used = sorted({d for d in layer_devices(info.block_count, chosen.n_gpu_layers, split) if d >= 0})
        device = "+".join(gpus[i].name for i in used)
        device += "" if full else f" ({chosen.n_gpu_layers}/{n_all} layers) + CPU"
    else:
        device = "CPU"
    return Plan(
        file=chosen.file,
        n_ctx=chosen.n_ctx,
        n_gpu_layers=chosen.n_gpu_layers,
        layers=n_all,
        device=device,
        estimate=chosen.est,
        budget_gpu=budget.gpus,
        budget_ram=budget.ram,
        threads=threads if threads is not None else threads_for(hardware, bool(gpus) and full),
        flash_attn=flash_attn,
        kv_type=kv_type,
        tensor_split=split if len(split) > 1 else (),
        rejected=tuple(rejected),
        notes=tuple(notes),
    )
