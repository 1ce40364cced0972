"""Argument checking shared by every mask kernel (CPU, Triton, reference).

Owns the exact calling convention of ``apply_token_bitmask_inplace`` / ``masked_log_softmax``:
which shapes, dtypes and devices are accepted, how ``indices`` and ``vocab_size`` are read, and the
``ValueError`` messages (they name the tensors and their shapes) for everything else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

LOGIT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
BITMASK_DTYPE = torch.int32

IndicesLike = Union[Sequence[int], torch.Tensor, None]


def _describe(name: str, t: torch.Tensor) -> str:
    return f"{name} (shape {tuple(t.shape)}, dtype {t.dtype}, device {t.device})"


@dataclass
class MaskCall:
    """A validated call: 2-D views of the inputs and what to mask.

    ``logits`` is [B, V'] and ``bitmask`` is [Bm, W] (1-D inputs become one row; both are views of
    the caller's storage, so writes land in the caller's tensor). Bitmask row r belongs to logits
    row r. Columns ``>= vocab_bound`` are padding and always masked; ``vocab_bound <= min(V', 32*W)``.
    ``rows`` is None (every row of ``logits``) or the rows to process: a list of ints that were
    checked to be in range, or an integer tensor on the logits' device (unchecked to avoid a host
    sync; the kernels skip out-of-range entries).
    """

    logits: torch.Tensor
    bitmask: torch.Tensor
    vocab_bound: int
    rows: list[int] | torch.Tensor | None


def check_mask_call(
    logits: torch.Tensor,
    bitmask: torch.Tensor,
    indices: IndicesLike = None,
    vocab_size: int | None = None,
) -> MaskCall:
    """Validate ``(logits, bitmask, indices, vocab_size)``; raise ``ValueError`` naming what is wrong."""
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(bitmask, torch.Tensor):
        raise ValueError(f"bitmask must be a torch.Tensor, got {type(bitmask).__name__}")
    if logits.dtype not in LOGIT_DTYPES:
        raise ValueError(f"{_describe('logits', logits)}: dtype must be float32, float16 or bfloat16")
    if bitmask.dtype != BITMASK_DTYPE:
        raise ValueError(f"{_describe('bitmask', bitmask)}: dtype must be torch.int32")
    if logits.dim() not in (1, 2):
        raise ValueError(f"{_describe('logits', logits)}: must be 1-D [V] or 2-D [B, V]")
    if bitmask.dim() not in (1, 2):
        raise ValueError(f"{_describe('bitmask', bitmask)}: must be 1-D [W] or 2-D [B, W]")
    if logits.device != bitmask.device:
        raise ValueError(
            f"{_describe('logits', logits)} and {_describe('bitmask', bitmask)} must be on the same "
            f"device; copy the bitmask first, e.g. bitmask.to(logits.device, non_blocking=True)"
        )
    logits2 = logits.unsqueeze(0) if logits.dim() == 1 else logits
    bitmask2 = bitmask.unsqueeze(0) if bitmask.dim() == 1 else bitmask
    n_rows, n_cols = logits2.shape
    n_mask_rows, n_words = bitmask2.shape
    covered = 32 * n_words
    if vocab_size is None:
        vocab_bound = min(n_cols, covered)
    else:
        vocab_size = int(vocab_size)
        if not 0 <= vocab_size <= covered:
            raise ValueError(
                f"vocab_size={vocab_size} but {_describe('bitmask', bitmask)} covers {covered} tokens "
                f"(32 per int32 word); need 0 <= vocab_size <= {covered}"
            )
        if vocab_size > n_cols:
            raise ValueError(
                f"vocab_size={vocab_size} exceeds the {n_cols} columns of {_describe('logits', logits)}"
            )
        vocab_bound = vocab_size

    rows: list[int] | torch.Tensor | None
    if indices is None:
        if n_mask_rows < n_rows:
            raise ValueError(
                f"{_describe('bitmask', bitmask)} has {n_mask_rows} rows but "
                f"{_describe('logits', logits)} has {n_rows}; bitmask row r masks logits row r"
            )
        rows = None
    else:
        limit = min(n_rows, n_mask_rows)
        if isinstance(indices, torch.Tensor):
            if indices.dim() != 1 or indices.dtype.is_floating_point or indices.dtype == torch.bool:
                raise ValueError(f"{_describe('indices', indices)}: must be a 1-D integer tensor")
            if indices.device.type == "cpu":
                rows = _checked_rows(indices.tolist(), limit, logits, bitmask)
            elif indices.device == logits.device:
                rows = indices  # checked in the kernel (no host sync)
            else:
                raise ValueError(
                    f"{_describe('indices', indices)} must be on the CPU or on {logits.device} "
                    f"like {_describe('logits', logits)}"
                )
        else:
            rows = _checked_rows(list(indices), limit, logits, bitmask)
    return MaskCall(logits2, bitmask2, vocab_bound, rows)


def _checked_rows(values: list, limit: int, logits: torch.Tensor, bitmask: torch.Tensor) -> list[int]:
    rows = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            try:
                iv = int(v)
            except (TypeError, ValueError):
                raise ValueError(f"indices must be integers, got {v!r}") from None
            if iv != v:
                raise ValueError(f"indices must be integers, got {v!r}")
            v = iv
        if not 0 <= v < limit:
            raise ValueError(
                f"index {v} out of range for {_describe('logits', logits)} and "
                f"{_describe('bitmask', bitmask)}: need 0 <= index < {limit}"
            )
        rows.append(v)
    return rows


def check_temperature(temperature, n_rows: int, logits: torch.Tensor) -> torch.Tensor | float:
    """A positive float, or a float tensor with one value per row ([B] or [B, 1]) on the logits'
    device, returned as a contiguous float32 [B] tensor. CUDA tensors are not checked for
    positivity (that would need a host sync)."""
    if isinstance(temperature, torch.Tensor):
        if temperature.dim() == 0:
            temperature = float(temperature.item())
        else:
            t = temperature
            if t.dim() == 2 and t.shape[1] == 1:
                t = t[:, 0]
            if t.dim() != 1 or t.shape[0] != n_rows:
                raise ValueError(
                    f"{_describe('temperature', temperature)}: must be a scalar or hold one value per "
                    f"row of {_describe('logits', logits)} (shape [{n_rows}] or [{n_rows}, 1])"
                )
            if t.device != logits.device:
                raise ValueError(
                    f"{_describe('temperature', temperature)} must be on the device of "
                    f"{_describe('logits', logits)}"
                )
            if not t.dtype.is_floating_point:
                t = t.to(torch.float32)
            t = t.to(torch.float32).contiguous()
            if t.device.type == "cpu" and not bool((t > 0).all()):
                raise ValueError(f"temperature must be > 0 in every row, got {t.tolist()[:8]}...")
            return t
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a float or a tensor, got {type(temperature).__name__}") from None
    if not value > 0:
        raise ValueError(f"temperature must be > 0, got {value}")
    return value
