"""CPU mask kernels: numba loops over the raw tensor buffers (GIL released), split across a small
thread pool for large batches.

``apply_token_bitmask_inplace_cpu`` writes the -inf bit pattern through an integer view of the
logits (int32 for float32, int16 for float16/bfloat16), so one compiled loop serves every dtype and
nothing is converted. Per 32-token word: all bits set -> skip, no bits set -> fill, otherwise a
conditional store over the 32 lanes that LLVM turns into one masked vector store (shifting by a
*loaded* lane vector is what lets it vectorize; a shift by the loop counter compiles to scalar,
branchy code, ~25x slower on random masks). Logits are never read: on large batches the kernel is
bound by cache misses on the words it must write, and a read-blend-write was ~2x slower there.

``masked_log_softmax_cpu`` runs three sweeps over each row (maxima, exp-sums, write) with a
vectorizable exp (range reduction + polynomial; numba has no SVML here, and the scalar libm exp
is ~10x slower).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._args import MaskCall

_LANES = np.arange(32, dtype=np.int32)
# byte value -> its 8 bits as 8 bytes (0/1), read as one little-endian uint64: expands a bitmask
# word into 32 "allowed" bytes with four table loads.
_BYTE_TO_LANES = np.array(
    [[(b >> j) & 1 for j in range(8)] for b in range(256)], dtype=np.uint8
).view("<u8").reshape(256).astype(np.uint64)

# Below this many logits per call, threads cost more than they save.
PARALLEL_MIN_ELEMENTS = 1 << 22
_pool: ThreadPoolExecutor | None = None


def _num_threads() -> int:
    """CORRAL_KERNEL_THREADS, else min(8, cores)."""
    env = os.environ.get("CORRAL_KERNEL_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(8, os.cpu_count() or 1))


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads(), thread_name_prefix="corral-kernels")
    return _pool


def _run_row_chunks(fn, n_items: int, n_elements: int, *args) -> None:
    """fn(*args, lo, hi) over [0, n_items), in parallel chunks when the call is big enough."""
    if n_items < 2 or n_elements < PARALLEL_MIN_ELEMENTS or (threads := _num_threads()) == 1:
        fn(*args, 0, n_items)
        return
    n_chunks = min(threads, n_items)
    bounds = np.linspace(0, n_items, n_chunks + 1).astype(np.int64)
    futures = [_thread_pool().submit(fn, *args, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    for f in futures:
        f.result()


# ----------------------------------------------------------------------------------------------
# in-place apply
#
# The entry points take raw addresses and lengths (plain ints) instead of numpy arrays: numba's
# dispatcher types ints far faster than arrays, and building numpy views of torch tensors costs
# microseconds per call, which is the whole budget for a small batch.


@intrinsic
def _void_ptr(typingctx, address):
    """int address -> void* (to build arrays over torch storage with numba.carray)."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@njit(cache=True, nogil=True)
def _apply_rows(x, x_stride, bm, bm_stride, rows, use_rows, n_cols, vocab_bound, neg, lo, hi):
    full_words = vocab_bound // 32
    tail = vocab_bound - 32 * full_words
    lanes = _LANES
    for ri in range(lo, hi):
        r = rows[ri] if use_rows else ri
        xrow = x[r * x_stride: r * x_stride + n_cols]
        brow = bm[r * bm_stride: r * bm_stride + full_words + 1]
        for k in range(full_words):
            w = brow[k]
            if w == -1:
                continue
            seg = xrow[32 * k: 32 * k + 32]
            if w == 0:
                seg[:] = neg
                continue
            for j in range(32):  # compiles to a masked vector store: no read of the logits
                if ((w >> lanes[j]) & 1) == 0:
                    seg[j] = neg
        if tail:
            w = brow[full_words]
            seg = xrow[32 * full_words: vocab_bound]
            for j in range(tail):
                if ((w >> j) & 1) == 0:
                    seg[j] = neg
        xrow[vocab_bound:n_cols] = neg  # padding columns


@njit(cache=True, nogil=True)
def _apply_rows_int32(x_addr, x_len, x_stride, bm_addr, bm_len, bm_stride, rows_addr, n_listed, n_cols,
                      vocab_bound, lo, hi):
    x = carray(_void_ptr(x_addr), (x_len,), np.int32)
    bm = carray(_void_ptr(bm_addr), (bm_len,), np.int32)
    rows = carray(_void_ptr(rows_addr), (n_listed,), np.int64)
    _apply_rows(x, x_stride, bm, bm_stride, rows, rows_addr != 0, n_cols, vocab_bound, np.int32(-8388608), lo, hi)


@njit(cache=True, nogil=True)
def _apply_rows_int16(x_addr, x_len, x_stride, bm_addr, bm_len, bm_stride, rows_addr, n_listed, n_cols,
                      vocab_bound, neg, lo, hi):
    x = carray(_void_ptr(x_addr), (x_len,), np.int16)
    bm = carray(_void_ptr(bm_addr), (bm_len,), np.int32)
    rows = carray(_void_ptr(rows_addr), (n_listed,), np.int64)
    _apply_rows(x, x_stride, bm, bm_stride, rows, rows_addr != 0, n_cols, vocab_bound, np.int16(neg), lo, hi)


def _span(t: torch.Tensor) -> int:
    """Elements from a 2-D tensor's first element to its last (unit column stride)."""
    return (t.shape[0] - 1) * t.stride(0) + t.shape[1]


def apply_token_bitmask_inplace_cpu(call: MaskCall) -> None:
    """In-place apply on CPU tensors (validated by ``check_mask_call``)."""
    logits, bitmask = call.logits, call.bitmask
    n_rows, n_cols = logits.shape
    rows_tensor = None
    if call.rows is None:
        n_work = n_rows
    else:
        rows_tensor = torch.as_tensor(
            call.rows.tolist() if isinstance(call.rows, torch.Tensor) else call.rows, dtype=torch.int64
        )
        n_work = rows_tensor.numel()
    if n_work == 0 or n_cols == 0:
        return
    if logits.stride(1) != 1:
        # Column-strided logits are rare (a transposed view); the reference handles them.
        from .reference import apply_token_bitmask_inplace_reference

        rows = list(range(n_rows)) if rows_tensor is None else rows_tensor.tolist()
        apply_token_bitmask_inplace_reference(logits, bitmask, rows, vocab_size=call.vocab_bound)
        return
    if bitmask.stride(1) != 1:
        bitmask = bitmask.contiguous()
    common = (
        logits.data_ptr(), _span(logits), logits.stride(0),
        bitmask.data_ptr(), _span(bitmask), bitmask.stride(0),
        0 if rows_tensor is None else rows_tensor.data_ptr(), 0 if rows_tensor is None else n_work,
        n_cols, call.vocab_bound,
    )
    if logits.dtype == torch.float32:
        _run_row_chunks(_apply_rows_int32, n_work, n_work * n_cols, *common)
    else:
        neg = -1024 if logits.dtype == torch.float16 else -128  # 0xFC00 / 0xFF80 as int16
        _run_row_chunks(_apply_rows_int16, n_work, n_work * n_cols, *common, neg)


# ----------------------------------------------------------------------------------------------
# fused masked log-softmax

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)
_LN2_LO = np.float32(1.4286067653301870e-06)
_EXP_FLOOR = np.float32(-87.0)  # exp(-87) ~ 1.6e-38, near the smallest normal float32
_CHUNK = 2048
# Reassociation lets LLVM vectorize the sums; no 'nnan'/'ninf' (-inf is a real value here).
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_SRC_FLOAT32, _SRC_BFLOAT16, _SRC_FLOAT16 = 0, 1, 2


@njit(cache=True, nogil=True)
def _half_bits_to_float32(src, dst, is_bfloat16):
    """float16 / bfloat16 bit patterns (int16) -> float32, vectorized (numba has no float16)."""
    dst_bits = dst.view(np.int32)
    n = src.shape[0]
    if is_bfloat16:
        for i in range(n):
            dst_bits[i] = (np.int32(src[i]) & np.int32(0xFFFF)) << np.int32(16)
        return
    # float16 -> float32 bits: normal numbers rebias the exponent (+112 << 23), inf/nan once more
    # (exponent 31 -> 255); zeros and subnormals are mantissa * 2^-24 computed as floats. Two
    # select-only loops, so both vectorize.
    for i in range(n):
        dst[i] = np.float32(np.int32(src[i]) & np.int32(0x3FF)) * np.float32(5.960464477539063e-08)
    for i in range(n):
        h = np.int32(src[i])
        exponent = h & np.int32(0x7C00)
        bits = ((h & np.int32(0x7FFF)) << np.int32(13)) + np.int32(112 << 23)
        bits = bits + np.int32(112 << 23) if exponent == np.int32(0x7C00) else bits
        bits = dst_bits[i] if exponent == 0 else bits
        dst_bits[i] = bits | ((h & np.int32(0x8000)) << np.int32(16))


_ORDERED_NEG_INF = np.int32(-2139095041)  # _ordered_bits(-inf)


@njit(cache=True, nogil=True, inline="always")
def _ordered_bits(b):
    """float32 bit pattern (as int32) -> an int32 whose signed order is the float order (an
    involution: applying it again gives the bit pattern back). Integer max-reductions vectorize;
    float ones do not without assuming no NaN/-inf."""
    return b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF))


@njit(cache=True, nogil=True)
def _maxima(s, keep):
    """(max over allowed, max over masked) of the float32 row s (-inf for an empty set)."""
    bits = s.view(np.int32)
    m_allowed = _ORDERED_NEG_INF
    m_masked = _ORDERED_NEG_INF
    for i in range(s.shape[0]):
        o = _ordered_bits(bits[i])
        k = keep[i] != 0
        m_allowed = max(m_allowed, o if k else _ORDERED_NEG_INF)
        m_masked = max(m_masked, _ORDERED_NEG_INF if k else o)
    pair = np.empty(2, np.int32)
    pair[0] = _ordered_bits(m_allowed)
    pair[1] = _ordered_bits(m_masked)
    values = pair.view(np.float32)
    return values[0], values[1]


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _exp_sum_chunk(s, inv_t, keep, shift_allowed, shift_masked, poly, scale_bits):
    """Sums of exp(s*inv_t - shift) over the allowed (keep=1) and the masked (keep=0) entries of a chunk,
    with a vectorizable exp: exp(d) = 2^k * p(d - k ln2), k = round(d / ln2), p the degree-6 Taylor
    polynomial (relative error < 3e-7 on |r| <= ln2/2). d <= 0 here; it is clamped at -87."""
    n = s.shape[0]
    for i in range(n):
        d = s[i] * inv_t - (shift_allowed if keep[i] else shift_masked)
        d = d if d > _EXP_FLOOR else _EXP_FLOOR  # also maps NaN to the floor
        k = np.int32(d * _LOG2E - np.float32(0.5))  # truncation toward 0 = round for d <= 0
        kf = np.float32(k)
        r = (d - kf * _LN2_HI) - kf * _LN2_LO
        p = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (np.float32(1.0 / 6.0) + r * (
            np.float32(1.0 / 24.0) + r * (np.float32(1.0 / 120.0) + r * np.float32(1.0 / 720.0))))))
        poly[i] = p
        scale_bits[i] = (k + np.int32(127)) << np.int32(23)
    scale = scale_bits[:n].view(np.float32)
    acc_allowed = np.float32(0.0)
    acc_total = np.float32(0.0)
    for i in range(n):
        e = poly[i] * scale[i]
        acc_allowed += e * np.float32(keep[i])
        acc_total += e
    return acc_allowed, acc_total - acc_allowed


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _write_log_probs(s, inv_t, d, keep, shift):
    neg_inf = np.float32(-np.inf)
    for i in range(d.shape[0]):
        d[i] = s[i] * inv_t - shift if keep[i] else neg_inf


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _write_log_probs_inplace(d, inv_t, keep, shift):
    neg_inf = np.float32(-np.inf)
    for i in range(d.shape[0]):
        d[i] = d[i] * inv_t - shift if keep[i] else neg_inf


@njit(cache=True, nogil=True)
def _masked_log_softmax_rows(src_addr, src_len, src_kind, src_stride, dst_addr, bm_addr, bm_len, bm_stride,
                             row_map_addr, temps_addr, temperature, n_rows, n_cols, vocab_bound, log_z_addr,
                             lo, hi):
    """Rows [lo, hi) of the fused kernel, over raw addresses (see ``_void_ptr``). row_map_addr 0:
    row r uses bitmask row r; else row_map[r] is its bitmask row, -1 for unconstrained. temps_addr
    0: every row uses ``temperature``; else temps[r]."""
    src_f32 = carray(_void_ptr(src_addr), (src_len,), np.float32)
    src_bits = carray(_void_ptr(src_addr), (src_len,), np.int16)
    dst = carray(_void_ptr(dst_addr), (n_rows * n_cols,), np.float32)
    bm = carray(_void_ptr(bm_addr), (bm_len,), np.int32)
    row_map = carray(_void_ptr(row_map_addr), (n_rows if row_map_addr != 0 else 0,), np.int64)
    temps = carray(_void_ptr(temps_addr), (n_rows if temps_addr != 0 else 0,), np.float32)
    log_z = carray(_void_ptr(log_z_addr), (n_rows,), np.float32)
    neg_inf = np.float32(-np.inf)
    table = _BYTE_TO_LANES
    keep = np.empty(32 * (n_cols // 32 + 1), np.uint8)
    keep64 = keep.view(np.uint64)
    poly = np.empty(_CHUNK, np.float32)
    scale_bits = np.empty(_CHUNK, np.int32)
    full_words = vocab_bound // 32
    for r in range(lo, hi):
        d = dst[r * n_cols: (r + 1) * n_cols]
        if src_kind == _SRC_FLOAT32:
            s = src_f32[r * src_stride: r * src_stride + n_cols]
        else:
            _half_bits_to_float32(src_bits[r * src_stride: r * src_stride + n_cols], d, src_kind == _SRC_BFLOAT16)
            s = d
        inv_t = np.float32(1.0) / (temps[r] if temps_addr != 0 else np.float32(temperature))
        br = row_map[r] if row_map_addr != 0 else r
        # which tokens are allowed (an unconstrained row: all of them)
        if br < 0:
            keep[:n_cols] = 1
        else:
            brow = bm[br * bm_stride: br * bm_stride + full_words + 1]
            for k in range(full_words):
                w = brow[k]
                keep64[4 * k] = table[w & 255]
                keep64[4 * k + 1] = table[(w >> 8) & 255]
                keep64[4 * k + 2] = table[(w >> 16) & 255]
                keep64[4 * k + 3] = table[(w >> 24) & 255]
            for t in range(32 * full_words, vocab_bound):
                keep[t] = (brow[full_words] >> (t - 32 * full_words)) & 1
            keep[vocab_bound:n_cols] = 0
        # sweep 1: maxima of the allowed and of the masked logits (scaling by 1/T > 0 keeps order)
        m_allowed, m_masked = _maxima(s, keep[:n_cols])
        m_allowed *= inv_t
        m_masked *= inv_t
        # sweep 2: exp-sums, each entry shifted by the max of its own set (one exp per entry)
        shift_allowed = m_allowed if m_allowed > neg_inf else np.float32(0.0)
        shift_masked = m_masked if m_masked > neg_inf else np.float32(0.0)
        sum_allowed = 0.0
        sum_masked = 0.0
        for c0 in range(0, n_cols, _CHUNK):
            c1 = min(c0 + _CHUNK, n_cols)
            a, m = _exp_sum_chunk(s[c0:c1], inv_t, keep[c0:c1], shift_allowed, shift_masked, poly, scale_bits)
            sum_allowed += a
            sum_masked += m
        lse_allowed = m_allowed + math.log(sum_allowed) if m_allowed > neg_inf else -np.inf
        lse_masked = m_masked + math.log(sum_masked) if m_masked > neg_inf else -np.inf
        if lse_allowed == -np.inf:
            log_z[r] = neg_inf
            d[:] = neg_inf
            continue
        top = max(lse_allowed, lse_masked)
        lse_all = top + math.log(math.exp(lse_allowed - top) + math.exp(lse_masked - top))
        log_z[r] = lse_allowed - lse_all
        # sweep 3: log-probabilities over the allowed tokens
        if src_kind == _SRC_FLOAT32:
            _write_log_probs(s, inv_t, d, keep[:n_cols], np.float32(lse_allowed))
        else:  # s is d: a one-array loop, or LLVM's overlap check falls back to scalar code
            _write_log_probs_inplace(d, inv_t, keep[:n_cols], np.float32(lse_allowed))


def masked_log_softmax_cpu(call: MaskCall, temperature, out: torch.Tensor, log_z: torch.Tensor) -> None:
    """Fused masked log-softmax on CPU tensors into contiguous float32 ``out`` [B, V'] and
    ``log_z`` [B]."""
    logits, bitmask = call.logits, call.bitmask
    n_rows, n_cols = logits.shape
    if n_rows == 0:
        return
    if n_cols == 0:
        log_z.fill_(float("-inf"))
        return
    if logits.stride(1) != 1:
        out.copy_(logits)  # gathers a column-strided view (rare) and converts to float32
        logits = out
    if logits.dtype == torch.float32:
        src_kind = _SRC_FLOAT32
    else:
        src_kind = _SRC_BFLOAT16 if logits.dtype == torch.bfloat16 else _SRC_FLOAT16
    if bitmask.stride(1) != 1:
        bitmask = bitmask.contiguous()
    row_map = None
    if call.rows is not None:
        rows = torch.as_tensor(call.rows.tolist() if isinstance(call.rows, torch.Tensor) else call.rows, dtype=torch.int64)
        row_map = torch.full((n_rows,), -1, dtype=torch.int64)
        row_map[rows] = rows
    temps = temperature.to(torch.float32).contiguous() if isinstance(temperature, torch.Tensor) else None
    _run_row_chunks(
        _masked_log_softmax_rows, n_rows, n_rows * n_cols,
        logits.data_ptr(), _span(logits), src_kind, logits.stride(0), out.data_ptr(),
        bitmask.data_ptr(), _span(bitmask), bitmask.stride(0),
        0 if row_map is None else row_map.data_ptr(), 0 if temps is None else temps.data_ptr(),
        1.0 if temps is not None else float(temperature), n_rows, n_cols, call.vocab_bound, log_z.data_ptr(),
    )
