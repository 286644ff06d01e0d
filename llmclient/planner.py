"""Choose the model file, context, GPU layers and threads that fit this machine, and explain the choice.

The memory each candidate needs comes from `llmclient.estimate`; the rule that chooses is in `plan`'s docstring;
the budget and the search for what fits are in `llmclient._fit`, the report of the choice in `llmclient._plan_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from llmclient._fit import (
    FLOOR_CTX,
    GPU_HEADROOM,
    RAM_HEADROOM,
    UNKNOWN_TRAINED_CTX,
    Budget,
    Est,
    FitCtx,
    Option,
    budget_for,
    held_info,
    info_for,
    largest,
    scaled_info,
    threads_for,
)
from llmclient._plan_report import make_plan, nothing_fits
from llmclient.estimate import estimate
from llmclient.hardware import Hardware
from llmclient.metadata import GgufInfo
from llmclient.quants import Quant, quality_rank, quant_named
from llmclient.types import MemoryEstimate, ModelFile, Plan, format_gb

__all__ = [
    "DEFAULT_CTX_CAP",
    "DEFAULT_PARALLEL",
    "GPU_HEADROOM",
    "MIN_CTX",
    "QUALITY_FLOOR",
    "RAM_HEADROOM",
    "plan",
    "scaled_info",
    "threads_for",
]

#: Without an asked context: the largest up to the trained length and this cap that fits.
DEFAULT_CTX_CAP = 8192
#: Requests decoded together in one batch unless asked otherwise (each up to the plan's context).
DEFAULT_PARALLEL = 4
#: The smallest context tried before a smaller quant or partial offload is preferred over a shorter context.
MIN_CTX = 2048
#: With partial offload, quants at least this good are preferred (the usual default; smaller ones lose quality).
QUALITY_FLOOR = "Q4_K_M"


def plan(
    files: Sequence[ModelFile],
    hardware: Hardware,
    *,
    n_ctx: int | None = None,
    quant: str | None = None,
    n_gpu_layers: int | None = None,
    cpu_only: bool = False,
    threads: int | None = None,
    flash_attn: bool = True,
    kv_type: str = "f16",
    reference: GgufInfo | None = None,
    notes: Sequence[str] = (),
    parallel: int | None = None,
    requantize: Quant | None = None,
    f32_embedding: bool = False,
) -> Plan:
    """Choose the file, context, GPU layers and threads for this machine; explain every candidate's fate.

    The rule, in order:

    1. Candidates: the files of `quant` if given, else every file whose quant may be picked automatically
       (unquantized F16/BF16/F32 only when nothing else is offered), best quality first (`llmclient.quants`).
    2. Context: `n_ctx` if given (never reduced); else the target min(trained length, 8192), reduced only
       when no candidate fits at it, never below 2048 while a smaller quant or partial offload could still give
       2048, and never below 512.
    3. With GPUs: the best quant that fits entirely in GPU memory (layers, output head, KV cache, compute
       buffers) at the target context; if none does, the best that fits at a context down to 2048. Context
       first: Q6_K with 8192 tokens beats Q8_0 with 2048.
    4. Else partial offload: among quants at least as good as Q4_K_M (then, if none fits, the smaller ones),
       the one that puts the largest share of its layers on the GPUs, the better quant winning a tie; the rest
       of the model runs from RAM, which must hold it. Each layer left on the CPU costs speed roughly in
       proportion to its size, so offloading more beats a finer quant that leaves more on the CPU.
    5. CPU only (no GPU, `cpu_only`, or nothing offloadable): the best quant that fits in RAM, trying the target
       context, then down to 2048, then down to 512.
    6. Nothing fits even at 512 tokens: `InsufficientMemoryError`, naming the smallest need and what would fit.
    7. Parallel requests, last, with what memory is left: up to `parallel` (default 4) sequences decode in one
       batch and share one KV cache of between one context and `parallel` contexts, the most that fits. A
       request reserves its prompt plus max_tokens of it and waits while that is not free. If even one context
       per sequence does not fit (a sliding-window cache grows with the sequences), fewer sequences.

    Budgets: each GPU's free memory minus max(512 MiB, 3% of its total); available RAM minus max(1 GiB, 10% of
    the total). An explicit `hardware.budget` replaces the GPU free memory (or the RAM, without GPUs).

    An engine that rewrites the weights while loading says how (`llmclient._fit.held_info`): `requantize` (the type
    mistral.rs's in-situ quantization writes: every candidate is sized as it will be held, not as its file is) and
    `f32_embedding` (the token embedding expanded to 32-bit floats).
    """
    if not files:
        raise ValueError("no model files to plan among")
    if n_ctx is not None and n_ctx < 1:
        raise ValueError(f"n_ctx must be a positive number of tokens, got {n_ctx}")
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be a positive number of requests, got {parallel}")
    budget = budget_for(hardware, cpu_only)
    gpus = () if cpu_only else hardware.gpus
    split = tuple(float(b) for b in budget.gpus) if gpus else ()
    if len(split) > 1 and not sum(split):
        split = tuple(1.0 for _ in split)

    candidates = _candidates(files, quant)
    infos = {c.filename: held_info(info_for(c, reference), c.quant, requantize, f32_embedding) for c in candidates}

    def est(c: ModelFile, ctx: int, ngl: int, seqs: int = 1) -> MemoryEstimate:
        return estimate(infos[c.filename], ctx, ngl if gpus else 0, gpu_split=split or (1.0,),
                        flash_attn=flash_attn, kv_type=kv_type, n_seq_max=seqs)  # fmt: skip

    def ctx_range(c: ModelFile) -> tuple[int, int]:
        if n_ctx is not None:
            return n_ctx, n_ctx
        trained = infos[c.filename].context_length or UNKNOWN_TRAINED_CTX
        top = min(trained, DEFAULT_CTX_CAP)
        return top, min(MIN_CTX, top)

    def fit_ctx(c: ModelFile, ngl: int, lo: int | None = None) -> Option | None:
        hi, floor = ctx_range(c)
        ctx = largest(
            lo if lo is not None else floor, hi, lambda x: budget.fits(est(c, x, ngl)), 256 if hi % 256 == 0 else 1
        )
        if ctx is None:
            return None
        return Option(c, infos[c.filename], ctx, ngl, est(c, ctx, ngl))

    def first_fit(ngl: Callable[[ModelFile], int], floors: Sequence[int | None]) -> Option | None:
        """The best candidate at the target context; failing that, at a context down to each floor in turn."""
        for floor in floors:
            for c in candidates:
                option = fit_ctx(c, ngl(c), floor if floor is not None else ctx_range(c)[0])
                if option is not None:
                    return option
        return None

    floors: list[int | None] = [None] if n_ctx is not None else [None, MIN_CTX]
    chosen: Option | None = None
    how = ""
    if gpus and n_gpu_layers is None:
        chosen = first_fit(lambda c: infos[c.filename].block_count + 1, floors)
        how = "every layer on the GPU"
        if chosen is None:
            chosen, how = _partial(candidates, infos, fit_ctx, budget, est, ctx_range)
    elif gpus and n_gpu_layers is not None:
        chosen = first_fit(lambda c: n_gpu_layers, floors)
        how = f"{n_gpu_layers} layers offloaded, as asked"
    if chosen is None and not (gpus and n_gpu_layers):  # asked-for layers that do not fit are an error
        chosen = first_fit(lambda c: 0, [*floors, FLOOR_CTX] if n_ctx is None else floors)
        how = "runs on the CPU" if not gpus else "runs on the CPU: nothing could be offloaded"
    if chosen is None:
        raise nothing_fits(candidates, budget, est, ctx_range, gpus != (), n_ctx is not None, n_gpu_layers)
    made = make_plan(
        chosen,
        candidates,
        budget,
        hardware,
        est,
        ctx_range,
        how,
        threads,
        flash_attn,
        kv_type,
        split,
        n_ctx is not None,
    )
    seqs, kv_tokens, shared = _parallel(chosen, parallel or DEFAULT_PARALLEL, budget, est)
    extra = [*notes]
    if requantize is not None and chosen.file.quant != requantize:
        extra.append(
            f"weights requantized to {requantize.name} while loading (in-situ quantization): "
            f"{format_gb(chosen.est.weights)} in memory for a {format_gb(chosen.file.size)} file"
        )
    if seqs < (parallel or DEFAULT_PARALLEL):
        wanted = parallel or DEFAULT_PARALLEL
        extra.append(f"{seqs} request(s) at once, not {wanted}: the KV cache for more does not fit")
    if seqs > 1 and kv_tokens < seqs * chosen.n_ctx:
        extra.append(
            f"the {seqs} parallel requests share {kv_tokens} tokens of KV cache (what fits); a request waits "
            "while its prompt + max_tokens is not free"
        )
    requantized = requantize.name if requantize is not None and chosen.file.quant != requantize else None
    return replace(made, parallel=seqs, kv_tokens=kv_tokens, estimate=shared, notes=(*made.notes, *extra),
                   in_situ_quant=requantized)  # fmt: skip


def _parallel(chosen: Option, want: int, budget: Budget, est: Callable[..., MemoryEstimate]
              ) -> tuple[int, int, MemoryEstimate]:  # fmt: skip
    """(sequences, KV cache tokens, estimate): the most KV, up to `want` contexts, for the most sequences."""
    c, ctx, ngl = chosen.file, chosen.n_ctx, chosen.n_gpu_layers
    step = 256 if ctx % 256 == 0 else 1
    for seqs in range(want, 1, -1):

        def fits(tokens: int, seqs: int = seqs) -> bool:
            return budget.fits(est(c, tokens, ngl, seqs))

        kv = largest(ctx, ctx * seqs, fits, step)
        if kv is not None:
            return seqs, kv, est(c, kv, ngl, seqs)
    return 1, ctx, chosen.est


def _candidates(files: Sequence[ModelFile], quant: str | None) -> list[ModelFile]:
    if quant is not None:
        wanted = quant_named(quant)
        chosen = [f for f in files if wanted is not None and f.quant == wanted]
        if not chosen:
            have = sorted({f.quant_name for f in files}, key=lambda n: quality_rank(quant_named(n)))
            raise ValueError(f"no {quant!r} file among the candidates; choose one of: {', '.join(have)}")
        return chosen
    auto = [f for f in files if f.quant is None or f.quant.auto]
    return sorted(auto or list(files), key=lambda f: (quality_rank(f.quant), f.size))


def _partial(
    candidates: list[ModelFile],
    infos: dict[str, GgufInfo],
    fit_ctx: FitCtx,
    budget: Budget,
    est: Est,
    ctx_range: Callable[[ModelFile], tuple[int, int]],
) -> tuple[Option | None, str]:
    floor = quality_rank(quant_named(QUALITY_FLOOR))
    good = [c for c in candidates if quality_rank(c.quant) <= floor]
    rest = [c for c in candidates if quality_rank(c.quant) > floor]
    for group in (good, rest):
        best: tuple[float, int, Option] | None = None
        for rank, c in enumerate(group):
            n_all = infos[c.filename].block_count + 1
            hi, lo = ctx_range(c)
            for ctx in sorted({hi, lo}, reverse=True):
                gpu_ok = lambda n, c=c, ctx=ctx: all(  # noqa: E731
                    need <= have for need, have in zip(est(c, ctx, n).gpu, budget.gpus, strict=False)
                )
                ngl = largest(1, n_all, gpu_ok)
                if ngl is None:
                    continue
                option = fit_ctx(c, ngl, ctx)
                if option is not None:
                    score = (ngl / n_all, -rank, option)
                    if best is None or score[:2] > best[:2]:
                        best = score
                    break
        if best is not None:
            option = best[2]
            n_all = option.info.block_count + 1
            return option, f"{option.n_gpu_layers}/{n_all} layers on the GPU, the rest from RAM (partial offload)"
    return None, ""
