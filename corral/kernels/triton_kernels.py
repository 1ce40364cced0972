"""Triton mask kernels for CUDA tensors (also runnable on CPU tensors under ``TRITON_INTERPRET=1``,
which is how CI exercises their logic without a GPU).

``_apply_bitmask_kernel``: grid (rows, column blocks). A block is a [BLOCK/32, 32] tile: one row
per bitmask word, so every load and store predicate is constant over a word's 32 logits and the
compiler emits 16-byte vector accesses. A word of all ones is neither read nor written; a word of
zeros is written (-inf) unread; a mixed word is read and written whole. Only a row's last block
compares column indices (a predicate that varies inside a word forces scalar 2-byte accesses: the
first version, with per-token store predicates, ran at a third of the roofline on an H100 —
B=4096, V=128k, bf16, random mask: 2.33 ms against xgrammar's CUDA kernel's 0.75 ms).

``_masked_log_softmax_kernel``: one program per row. Sweep 1 streams the row once, keeping an online
(max, sum-of-exp) pair for the allowed and for the masked tokens (block maxima, then one exp per
entry, shifted by the max of the set it belongs to); sweep 2 re-reads the row (now mostly from L2)
and writes log-probabilities. One kernel launch replaces mask + log_softmax + logsumexp.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._args import MaskCall

APPLY_BLOCK = 2048
# a block with at most this many (of BLOCK/32) mixed words skips reading: see _apply_bitmask_kernel
APPLY_STORE_ONLY_LIMIT = 16
FUSED_BLOCK = 4096


@triton.jit(do_not_specialize=["row_limit", "n_cols", "vocab_bound", "store_only_limit"])
def _apply_bitmask_kernel(
    logits_ptr,
    bitmask_ptr,
    rows_ptr,
    row_limit,
    n_cols,
    vocab_bound,
    logits_row_stride,
    logits_col_stride,
    bitmask_row_stride,
    store_only_limit,
    BLOCK: tl.constexpr,
):
    WORDS: tl.constexpr = BLOCK // 32
    work_row = tl.program_id(0)
    block_start = tl.program_id(1) * BLOCK
    if rows_ptr is None:
        row = work_row.to(tl.int64)
        cols_to_write = n_cols
    else:
        row = tl.load(rows_ptr + work_row).to(tl.int64)
        # out-of-range indices are skipped, not faulted: such a row reads and writes nothing
        cols_to_write = tl.where((row >= 0) & (row < row_limit), n_cols, 0)
    word_offsets = block_start // 32 + tl.arange(0, WORDS)
    words = tl.load(
        bitmask_ptr + row * bitmask_row_stride + word_offsets,
        mask=word_offsets * 32 < tl.minimum(vocab_bound, cols_to_write),
        other=0,  # words past the vocabulary bound: padding, masked
    )
    lanes = tl.arange(0, 32)
    cols = word_offsets[:, None] * 32 + lanes[None, :]
    allowed = (((words[:, None] >> lanes[None, :]) & 1) != 0) & (cols < vocab_bound)
    # per-word predicates, broadcast over the word's 32 lanes
    full = (words == -1) & ((word_offsets + 1) * 32 <= vocab_bound)
    write = tl.broadcast_to((~full)[:, None], (WORDS, 32))
    read = tl.broadcast_to(((words != 0) & ~full)[:, None], (WORDS, 32))
    ptrs = logits_ptr + row * logits_row_stride + cols * logits_col_stride
    mixed_words = tl.sum(((words != 0) & ~full).to(tl.int32), 0)
    if block_start + BLOCK > cols_to_write:  # the row's last block: per-column bounds
        in_cols = cols < cols_to_write
        kept = tl.load(ptrs, mask=read & in_cols, other=float("-inf"))
        tl.store(ptrs, tl.where(allowed, kept, float("-inf")), mask=write & in_cols)
    elif mixed_words <= store_only_limit:
        # few mixed words (dense or sparse masks): no read at all; zero words as vector stores, the
        # masked lanes of mixed words as scalar stores (one memory round trip less than a read)
        zero = tl.broadcast_to((words == 0)[:, None], (WORDS, 32))
        tl.store(ptrs, tl.full((WORDS, 32), float("-inf"), logits_ptr.dtype.element_ty), mask=zero)
        tl.store(ptrs, tl.full((WORDS, 32), float("-inf"), logits_ptr.dtype.element_ty),
                 mask=read & ~allowed)
    else:
        kept = tl.load(ptrs, mask=read, other=float("-inf"))
        tl.store(ptrs, tl.where(allowed, kept, float("-inf")), mask=write)


def _num_warps_for(element_size: int, block: int) -> int:
    """Warps per apply program: one 16-byte vector per thread per step, at most 8 warps. Chosen by
    bench/kernel_variants.py on an H100 (V=128k, bf16): BLOCK 2048 with 8 warps was within noise of
    the best of 12 (BLOCK 2048/4096/8192 x 2/4/8/16 warps) at B=1, 256 and 4096 for random, sparse
    and dense masks; BLOCK 4096 with 4 warps was 1.3x slower on dense masks at B=4096."""
    return max(1, min(8, block // 32 // (16 // element_size)))


def _unit_word_stride(bitmask: torch.Tensor) -> torch.Tensor:
    """The kernels index a bitmask row's words with stride 1; a column-major view gets copied (it is
    1/32 of the logits' size in words)."""
    return bitmask if bitmask.stride(1) == 1 or bitmask.shape[1] <= 1 else bitmask.contiguous()


def _rows_on_device(rows, device: torch.device) -> torch.Tensor:
    if isinstance(rows, torch.Tensor):
        return rows
    host = torch.tensor(rows, dtype=torch.int32)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def apply_token_bitmask_inplace_triton(call: MaskCall, block: int = APPLY_BLOCK, num_warps: int | None = None,
                                       store_only_limit: int | None = None) -> None:
    """In-place apply with the Triton kernel (validated call). ``block`` (a power of two >= 32),
    ``num_warps`` and ``store_only_limit`` (a block with at most this many mixed words is written
    without reading; -1: never) are launch parameters, exposed for tuning runs."""
    logits, bitmask = call.logits, _unit_word_stride(call.bitmask)
    n_rows, n_cols = logits.shape
    rows = None if call.rows is None else _rows_on_device(call.rows, logits.device)
    n_work = n_rows if rows is None else rows.numel()
    if n_work == 0 or n_cols == 0:
        return
    grid = (n_work, triton.cdiv(n_cols, block))
    _apply_bitmask_kernel[grid](
        logits,
        bitmask,
        rows,
        min(n_rows, bitmask.shape[0]),
        n_cols,
        call.vocab_bound,
        logits.stride(0),
        logits.stride(1),
        bitmask.stride(0),
        APPLY_STORE_ONLY_LIMIT if store_only_limit is None else store_only_limit,
        BLOCK=block,
        num_warps=num_warps or _num_warps_for(logits.element_size(), block),
    )


@triton.jit
def _allowed_tile(bitmask_ptr, bitmask_row, bitmask_row_stride, block_start, bound, BLOCK: tl.constexpr):
    """(cols, allowed) as [BLOCK/32, 32] tiles, one row per bitmask word. bitmask_row < 0 means an
    unconstrained row (all allowed)."""
    word_offsets = block_start // 32 + tl.arange(0, BLOCK // 32)
    words = tl.load(
        bitmask_ptr + bitmask_row * bitmask_row_stride + word_offsets,
        mask=word_offsets * 32 < tl.where(bitmask_row >= 0, bound, 0),
        other=-1,
    )
    lanes = tl.arange(0, 32)
    cols = word_offsets[:, None] * 32 + lanes[None, :]
    return cols, (((words[:, None] >> lanes[None, :]) & 1) != 0) & (cols < bound)


@triton.jit
def _row_setup(row, row_map_ptr, temperature_ptr, temperature, n_cols, vocab_bound):
    """(bitmask row, 1/T, allowed-token bound) of a logits row; bitmask row -1 = unconstrained."""
    if row_map_ptr is None:
        bitmask_row = row
    else:
        bitmask_row = tl.load(row_map_ptr + row).to(tl.int64)
    if temperature_ptr is None:
        inv_t = 1.0 / temperature
    else:
        inv_t = 1.0 / tl.load(temperature_ptr + row).to(tl.float32)
    bound = tl.where(bitmask_row < 0, n_cols, vocab_bound)
    return bitmask_row, inv_t, bound


@triton.jit
def _load_tile(row_logits, logits_col_stride, cols, block_start, col_end, BLOCK: tl.constexpr):
    """Logits of one tile as float32 (-inf past col_end); only a block that crosses col_end compares
    column indices, so interior blocks load with 16-byte vectors."""
    if block_start + BLOCK <= col_end:
        z = tl.load(row_logits + cols * logits_col_stride)
    else:
        z = tl.load(row_logits + cols * logits_col_stride, mask=cols < col_end, other=float("-inf"))
    return z.to(tl.float32)


@triton.jit
def _max2d(x):
    return tl.max(tl.max(x, 1), 0)


@triton.jit
def _sum2d(x):
    return tl.sum(tl.sum(x, 1), 0)


@triton.jit
def _stats_over(row_logits, logits_col_stride, bitmask_ptr, bitmask_row, bitmask_row_stride, inv_t, bound,
                col_start, col_end, BLOCK: tl.constexpr):
    """Online (max, sum exp(z - max)) of the allowed and of the masked tokens in [col_start, col_end):
    block maxima, then one exp per entry shifted by the max of the set it belongs to."""
    neg_inf = float("-inf")
    m_allowed = tl.full((), neg_inf, tl.float32)
    m_masked = tl.full((), neg_inf, tl.float32)
    s_allowed = tl.zeros((), tl.float32)
    s_masked = tl.zeros((), tl.float32)
    for block_start in range(col_start, col_end, BLOCK):
        cols, allowed = _allowed_tile(bitmask_ptr, bitmask_row, bitmask_row_stride, block_start, bound, BLOCK)
        z = _load_tile(row_logits, logits_col_stride, cols, block_start, col_end, BLOCK) * inv_t
        new_m_allowed = tl.maximum(m_allowed, _max2d(tl.where(allowed, z, neg_inf)))
        new_m_masked = tl.maximum(m_masked, _max2d(tl.where(allowed, neg_inf, z)))
        # shift by 0 while a set has no finite entry, so exp never sees (-inf) - (-inf)
        shift_allowed = tl.where(new_m_allowed == neg_inf, 0.0, new_m_allowed)
        shift_masked = tl.where(new_m_masked == neg_inf, 0.0, new_m_masked)
        e = tl.exp(z - tl.where(allowed, shift_allowed, shift_masked))
        s_allowed = s_allowed * tl.exp(m_allowed - shift_allowed) + _sum2d(tl.where(allowed, e, 0.0))
        s_masked = s_masked * tl.exp(m_masked - shift_masked) + _sum2d(tl.where(allowed, 0.0, e))
        m_allowed = new_m_allowed
        m_masked = new_m_masked
    return m_allowed, s_allowed, m_masked, s_masked


@triton.jit
def _finish_stats(m_allowed, s_allowed, m_masked, s_masked):
    """-> (log Z, shift = logsumexp over the allowed tokens, no_mass)."""
    neg_inf = float("-inf")
    lse_allowed = m_allowed + tl.log(s_allowed)  # -inf when no allowed token has a finite logit
    lse_masked = m_masked + tl.log(s_masked)
    no_mass = lse_allowed == neg_inf
    hi = tl.where(no_mass, 0.0, tl.maximum(lse_allowed, lse_masked))
    lse_all = hi + tl.log(tl.exp(lse_allowed - hi) + tl.exp(lse_masked - hi))
    log_z = tl.where(no_mass, neg_inf, lse_allowed - lse_all)
    return log_z, tl.where(no_mass, 0.0, lse_allowed), no_mass


@triton.jit
def _write_log_probs(row_logits, logits_col_stride, row_out, bitmask_ptr, bitmask_row, bitmask_row_stride,
                     inv_t, bound, shift, col_start, col_end, BLOCK: tl.constexpr):
    for block_start in range(col_start, col_end, BLOCK):
        cols, allowed = _allowed_tile(bitmask_ptr, bitmask_row, bitmask_row_stride, block_start, bound, BLOCK)
        z = _load_tile(row_logits, logits_col_stride, cols, block_start, col_end, BLOCK)
        values = tl.where(allowed, z * inv_t - shift, float("-inf"))
        if block_start + BLOCK <= col_end:
            tl.store(row_out + cols, values)
        else:
            tl.store(row_out + cols, values, mask=cols < col_end)


@triton.jit(do_not_specialize=["temperature", "n_cols", "vocab_bound"])
def _masked_log_softmax_kernel(
    logits_ptr,
    bitmask_ptr,
    row_map_ptr,
    temperature_ptr,
    temperature,
    out_ptr,
    log_z_ptr,
    n_cols,
    vocab_bound,
    logits_row_stride,
    logits_col_stride,
    bitmask_row_stride,
    out_row_stride,
    BLOCK: tl.constexpr,
):
    """One program per row: statistics sweep, then the write sweep (re-reading the row, mostly
    from L2)."""
    row = tl.program_id(0).to(tl.int64)
    bitmask_row, inv_t, bound = _row_setup(row, row_map_ptr, temperature_ptr, temperature, n_cols, vocab_bound)
    row_logits = logits_ptr + row * logits_row_stride
    m_a, s_a, m_m, s_m = _stats_over(row_logits, logits_col_stride, bitmask_ptr, bitmask_row, bitmask_row_stride,
                                     inv_t, bound, 0, n_cols, BLOCK)
    log_z, shift, no_mass = _finish_stats(m_a, s_a, m_m, s_m)
    tl.store(log_z_ptr + row, log_z)
    bound = tl.where(no_mass, 0, bound)  # nothing is allowed in a row without mass
    _write_log_probs(row_logits, logits_col_stride, out_ptr + row * out_row_stride, bitmask_ptr, bitmask_row,
                     bitmask_row_stride, inv_t, bound, shift, 0, n_cols, BLOCK)


@triton.jit(do_not_specialize=["temperature", "n_cols", "vocab_bound", "chunk"])
def _masked_log_softmax_partial_kernel(
    logits_ptr,
    bitmask_ptr,
    row_map_ptr,
    temperature_ptr,
    temperature,
    partials_ptr,
    n_cols,
    vocab_bound,
    chunk,
    logits_row_stride,
    logits_col_stride,
    bitmask_row_stride,
    SPLITS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Split path, phase 1 (grid rows x SPLITS): statistics of one column chunk -> partials[row, split, 0:4]."""
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    bitmask_row, inv_t, bound = _row_setup(row, row_map_ptr, temperature_ptr, temperature, n_cols, vocab_bound)
    col_start = split * chunk
    col_end = tl.minimum(col_start + chunk, n_cols)
    m_a, s_a, m_m, s_m = _stats_over(logits_ptr + row * logits_row_stride, logits_col_stride, bitmask_ptr,
                                     bitmask_row, bitmask_row_stride, inv_t, bound, col_start, col_end, BLOCK)
    base = partials_ptr + (row * SPLITS + split) * 4
    tl.store(base + 0, m_a)
    tl.store(base + 1, s_a)
    tl.store(base + 2, m_m)
    tl.store(base + 3, s_m)


@triton.jit(do_not_specialize=["temperature", "n_cols", "vocab_bound", "chunk"])
def _masked_log_softmax_finish_kernel(
    logits_ptr,
    bitmask_ptr,
    row_map_ptr,
    temperature_ptr,
    temperature,
    partials_ptr,
    out_ptr,
    log_z_ptr,
    n_cols,
    vocab_bound,
    chunk,
    logits_row_stride,
    logits_col_stride,
    bitmask_row_stride,
    out_row_stride,
    SPLITS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Split path, phase 2 (grid rows x SPLITS): merge the row's partials (each program does it; it
    is SPLITS*4 floats), then write one column chunk."""
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    bitmask_row, inv_t, bound = _row_setup(row, row_map_ptr, temperature_ptr, temperature, n_cols, vocab_bound)
    neg_inf = float("-inf")
    parts = partials_ptr + row * SPLITS * 4 + tl.arange(0, SPLITS) * 4
    m_a_parts = tl.load(parts + 0)
    m_m_parts = tl.load(parts + 2)
    m_a = tl.max(m_a_parts, 0)
    m_m = tl.max(m_m_parts, 0)
    shift_a = tl.where(m_a == neg_inf, 0.0, m_a)
    shift_m = tl.where(m_m == neg_inf, 0.0, m_m)
    s_a = tl.sum(tl.load(parts + 1) * tl.exp(m_a_parts - shift_a), 0)
    s_m = tl.sum(tl.load(parts + 3) * tl.exp(m_m_parts - shift_m), 0)
    log_z, shift, no_mass = _finish_stats(m_a, s_a, m_m, s_m)
    if split == 0:
        tl.store(log_z_ptr + row, log_z)
    bound = tl.where(no_mass, 0, bound)
    col_start = split * chunk
    col_end = tl.minimum(col_start + chunk, n_cols)
    _write_log_probs(logits_ptr + row * logits_row_stride, logits_col_stride, out_ptr + row * out_row_stride,
                     bitmask_ptr, bitmask_row, bitmask_row_stride, inv_t, bound, shift, col_start, col_end, BLOCK)


def _num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 132  # interpreter runs: pretend an H100 so the split path gets exercised too


def choose_splits(n_rows: int, n_cols: int, device: torch.device) -> int:
    """Column chunks per row: 1 (one program per row) once the rows alone fill the GPU; otherwise
    enough chunks for ~2 programs per SM, a power of two <= 64, each at least one BLOCK wide."""
    target = 2 * _num_sms(device)
    if n_rows >= target:
        return 1
    splits = 1
    while splits < 64 and n_rows * splits < target and (splits * 2) * FUSED_BLOCK <= n_cols:
        splits *= 2
    return splits


def masked_log_softmax_triton(call: MaskCall, temperature, out: torch.Tensor, log_z: torch.Tensor,
                              splits: int | None = None) -> None:
    """Fused masked log-softmax with the Triton kernels (validated call) into float32 ``out`` [B, V']
    (unit column stride) and ``log_z`` [B] (contiguous). ``splits``: column chunks per row (a power
    of two; None chooses by size). 1 = a single launch, one program per row; more = two launches
    (partial statistics, then merge + write), for small batches that would leave SMs idle."""
    logits, bitmask = call.logits, _unit_word_stride(call.bitmask)
    n_rows, n_cols = logits.shape
    device = logits.device
    if n_rows == 0:
        return
    row_map = None
    if call.rows is not None:
        rows = _rows_on_device(call.rows, device).to(torch.int64)
        limit = min(n_rows, bitmask.shape[0])
        # slot n_rows swallows out-of-range indices without a host sync
        ok = (rows >= 0) & (rows < limit)
        row_map = torch.full((n_rows + 1,), -1, dtype=torch.int64, device=device)
        row_map.index_put_((torch.where(ok, rows, n_rows),), torch.where(ok, rows, -1))
    temp_tensor = temperature if isinstance(temperature, torch.Tensor) else None
    temp_value = 1.0 if temp_tensor is not None else float(temperature)
    if splits is None:
        splits = choose_splits(n_rows, n_cols, device)
    if splits == 1:
        _masked_log_softmax_kernel[(n_rows,)](
            logits, bitmask, row_map, temp_tensor, temp_value, out, log_z,
            n_cols, call.vocab_bound, logits.stride(0), logits.stride(1), bitmask.stride(0), out.stride(0),
            BLOCK=FUSED_BLOCK, num_warps=8,
        )
        return
    if splits & (splits - 1):
        raise ValueError(f"splits must be a power of two, got {splits}")
    chunk = triton.cdiv(triton.cdiv(n_cols, splits), FUSED_BLOCK) * FUSED_BLOCK  # block-aligned chunks
    partials = torch.empty((n_rows, splits, 4), dtype=torch.float32, device=device)
    grid = (n_rows, splits)
    _masked_log_softmax_partial_kernel[grid](
        logits, bitmask, row_map, temp_tensor, temp_value, partials,
        n_cols, call.vocab_bound, chunk, logits.stride(0), logits.stride(1), bitmask.stride(0),
        SPLITS=splits, BLOCK=FUSED_BLOCK, num_warps=8,
    )
    _masked_log_softmax_finish_kernel[grid](
        logits, bitmask, row_map, temp_tensor, temp_value, partials, out, log_z,
        n_cols, call.vocab_bound, chunk, logits.stride(0), logits.stride(1), bitmask.stride(0), out.stride(0),
        SPLITS=splits, BLOCK=FUSED_BLOCK, num_warps=8,
    )
