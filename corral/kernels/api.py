"""Public entry points of the kernels layer: bitmask allocation, in-place masking of logits, and the
fused masked log-softmax. Each dispatches on the tensors' device: Triton for CUDA, numba for CPU,
the plain-torch reference for anything else (or on request, ``backend="torch"``)."""
from __future__ import annotations

import math
import os
from typing import Literal

import torch

from . import cpu as _cpu
from ._args import BITMASK_DTYPE, IndicesLike, check_mask_call, check_temperature

Backend = Literal["auto", "cpu", "triton", "torch"]
_BACKENDS = ("auto", "cpu", "triton", "torch")


def get_bitmask_shape(batch_size: int, vocab_size: int) -> tuple[int, int]:
    """(batch_size, ceil(vocab_size / 32))."""
    return (int(batch_size), math.ceil(int(vocab_size) / 32))


def allocate_token_bitmask(batch_size: int, vocab_size: int, *, pin_memory: bool | None = None) -> torch.Tensor:
    """A CPU int32 bitmask [batch_size, ceil(vocab_size/32)] with every token allowed (all bits set).

    Layout (XGrammar's and llguidance's): bit ``t % 32`` of word ``t // 32`` of row ``r`` is set iff
    token ``t`` is allowed in row ``r``. Pinned when CUDA is available (``pin_memory=None``), so the
    host-to-device copy before masking can be asynchronous.
    """
    if batch_size < 0 or vocab_size < 0:
        raise ValueError(f"batch_size and vocab_size must be >= 0, got {batch_size}, {vocab_size}")
    shape = get_bitmask_shape(batch_size, vocab_size)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    try:
        return torch.full(shape, -1, dtype=BITMASK_DTYPE, pin_memory=pin_memory)
    except RuntimeError:  # pinning can fail (no driver, locked-memory limits)
        return torch.full(shape, -1, dtype=BITMASK_DTYPE)


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    if device.type == "cuda":
        return "triton" if _triton_available() else "torch"
    if device.type == "cpu":
        return "cpu"
    return "torch"


_TRITON_OK: bool | None = None


def _triton_available() -> bool:
    global _TRITON_OK
    if _TRITON_OK is None:
        try:
            from . import triton_kernels  # noqa: F401

            _TRITON_OK = True
        except Exception:  # ImportError, or a triton without a usable backend
            _TRITON_OK = False
    return _TRITON_OK


def _check_backend_device(backend: str, device: torch.device) -> None:
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f"backend='cpu' needs CPU tensors, got tensors on {device}")
    if backend == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(f"backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1), got tensors on {device}")


def apply_token_bitmask_inplace(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: IndicesLike = None,
    *,
    vocab_size: int | None = None,
    backend: Backend = "auto",
) -> None:
    """Set ``logits[r, t] = -inf`` for every token ``t`` that row ``r`` of ``bitmask`` disallows.

    - ``logits``: float32 / float16 / bfloat16, [B, V'] or [V'], on CUDA or CPU; modified in place
      (any row stride; a non-unit column stride works but is slow on CPU).
    - ``bitmask``: int32 [Bm, W] or [W] on the same device; bit ``t % 32`` of word ``t // 32`` set
      iff token ``t`` allowed. Bitmask row ``r`` masks logits row ``r``; ``Bm >= B`` (extra rows,
      e.g. of a bitmask preallocated for the largest batch, are ignored).
    - Padding: tokens at or beyond the vocabulary bound are masked. The bound is ``vocab_size`` when
      given (``vocab_size <= min(V', 32*W)``), else ``min(V', 32*W)``; so logits wider than the
      bitmask get their extra columns masked (llguidance does the same; XGrammar 0.2.8 leaves them
      unmasked with a warning, and with ``vocab_size`` leaves columns >= vocab_size untouched).
    - ``indices``: optional rows to mask (list of ints or an integer tensor), for batches where only
      some sequences are constrained; other rows are left untouched (XGrammar's semantics: row
      ``i`` in ``indices`` uses bitmask row ``i``). Lists and CPU tensors are range-checked
      (``ValueError``); a CUDA tensor is not (no host sync) and out-of-range entries are skipped.
    - ``backend``: "auto" (Triton for CUDA, numba for CPU, torch otherwise), "cpu", "triton", "torch".

    Argument order and keywords match ``xgrammar.apply_token_bitmask_inplace(logits, bitmask, *,
    vocab_size=None, indices=None)``, so callers can swap engines. Shape, dtype or device mismatches
    raise ``ValueError`` naming the tensors and their shapes.
    """
    call = check_mask_call(logits, bitmask, indices, vocab_size)
    if backend == "auto" and logits.device.type == "cpu":  # the common case, kept short
        _cpu.apply_token_bitmask_inplace_cpu(call)
        return
    resolved = _resolve_backend(backend, logits.device)
    _check_backend_device(resolved, logits.device)
    if resolved == "cpu":
        _cpu.apply_token_bitmask_inplace_cpu(call)
    elif resolved == "triton":
        from .triton_kernels import apply_token_bitmask_inplace_triton

        apply_token_bitmask_inplace_triton(call)
    else:
        from .reference import apply_token_bitmask_inplace_reference

        apply_token_bitmask_inplace_reference(logits, bitmask, indices, vocab_size=vocab_size)


def masked_log_softmax(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    indices: IndicesLike = None,
    *,
    vocab_size: int | None = None,
    backend: Backend = "auto",
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused mask + temperature + log-softmax: ``(logprobs, log_z)``, both float32, logits untouched.

    With ``z = logits[r] / T_r`` (float32; ``T`` a positive float or one value per row, [B] or
    [B, 1]) and ``A_r`` the tokens allowed in row ``r`` (same bitmask, padding and ``indices``
    rules as :func:`apply_token_bitmask_inplace`; rows not in ``indices`` are unconstrained, i.e.
    every column of the row is allowed)::

        logprobs[r, t] = z_t - logsumexp(z[A_r])      for t in A_r, else -inf
        log_z[r]       = logsumexp(z[A_r]) - logsumexp(z[all V' columns])
                       = log P(next token in A_r) under the unconstrained softmax(z)

    So ``logprobs`` is the log of the constrained, renormalized distribution (what a sampler draws
    from), and ``log_z`` is the log of the probability mass the mask keeps (importance weights in
    aligned sampling / SMC, and speculative acceptance need it; it is 0 for unconstrained rows).
    A row whose allowed set has no finite logit gets ``logprobs = -inf`` everywhere and
    ``log_z = -inf``. Shapes: ``logprobs`` like ``logits``; ``log_z`` is ``logits.shape[:-1]``.

    ``out``: optional ``(logprobs, log_z)`` buffers to write into (float32, contiguous, the shapes
    above, on the logits' device), e.g. reused across decoding steps; they are returned.

    On CUDA one Triton program per row streams the row once for the online statistics and once
    more to write (one launch instead of mask + log_softmax + logsumexp); on CPU a numba loop does
    the same per row with a vectorized exp.
    """
    call = check_mask_call(logits, bitmask, indices, vocab_size)
    temp = check_temperature(temperature, call.logits.shape[0], logits)
    resolved = _resolve_backend(backend, logits.device)
    _check_backend_device(resolved, logits.device)
    logprobs, log_z = _output_buffers(out, logits)
    logprobs2, log_z1 = logprobs.view(call.logits.shape), log_z.view(call.logits.shape[0])
    if resolved == "cpu":
        _cpu.masked_log_softmax_cpu(call, temp, logprobs2, log_z1)
    elif resolved == "triton":
        from .triton_kernels import masked_log_softmax_triton

        masked_log_softmax_triton(call, temp, logprobs2, log_z1)
    else:
        from .reference import masked_log_softmax_reference

        ref_lp, ref_lz = masked_log_softmax_reference(logits, bitmask, temperature, indices, vocab_size=vocab_size)
        logprobs.copy_(ref_lp)
        log_z.copy_(ref_lz)
    return logprobs, log_z


def _output_buffers(out, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = (tuple(logits.shape), tuple(logits.shape[:-1]))
    if out is None:
        return (
            torch.empty_like(logits, dtype=torch.float32, memory_format=torch.contiguous_format),
            logits.new_empty(shapes[1], dtype=torch.float32),
        )
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ValueError("out must be a (logprobs, log_z) pair of tensors")
    for name, t, shape in zip(("out[0] (logprobs)", "out[1] (log_z)"), out, shapes):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor")
        if t.dtype != torch.float32 or tuple(t.shape) != shape or t.device != logits.device or not t.is_contiguous():
            raise ValueError(
                f"{name} (shape {tuple(t.shape)}, dtype {t.dtype}, device {t.device}) must be a "
                f"contiguous float32 tensor of shape {shape} on {logits.device}, to match logits "
                f"(shape {tuple(logits.shape)})"
            )
    return out[0], out[1]
