"""Mask kernels (corral.kernels) against independent oracles: a pure-Python bit loop for the
reference, the plain-torch reference for the fast paths, xgrammar's kernel where the semantics
coincide, and the Triton kernels under TRITON_INTERPRET=1 (a subprocess) so their logic runs in CI
without a GPU. The same parametrized tests run on CUDA when present (marked gpu, skipped otherwise).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from corral.kernels import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    apply_token_bitmask_inplace_reference,
    get_bitmask_shape,
    masked_log_softmax,
    masked_log_softmax_reference,
    unpack_bitmask,
)

HAS_CUDA = torch.cuda.is_available()
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")]),
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (logits columns V', vocabulary the bitmask is allocated for)
SHAPES = [
    (128256, 128256),  # Llama-3
    (151936, 151665),  # Qwen2.5: model logits padded over the tokenizer's vocabulary
    (1001, 1001),  # odd, not a multiple of 32
    (77, 60),  # logits wider than the bitmask's 64 bits: columns 64.. are padding
    (50, 100),  # logits narrower than the bitmask
    (33, 33),
]


def random_bitmask(n_rows: int, vocab: int, gen: torch.Generator) -> torch.Tensor:
    """Random words plus the special rows the kernels shortcut: nothing allowed, everything
    allowed, a single token, and mostly-full / mostly-empty rows."""
    bm = allocate_token_bitmask(n_rows, vocab, pin_memory=False)
    bm.copy_(torch.randint(-(2**31), 2**31 - 1, bm.shape, dtype=torch.int32, generator=gen))
    specials = [
        lambda r: r.fill_(0),
        lambda r: r.fill_(-1),
        lambda r: (r.fill_(0), r.__setitem__(min(3, r.numel() - 1), 1 << 5)),
        lambda r: r.masked_fill_(torch.rand(r.shape, generator=gen) < 0.9, -1),
        lambda r: r.masked_fill_(torch.rand(r.shape, generator=gen) < 0.9, 0),
    ]
    for i, special in enumerate(specials[:n_rows]):
        special(bm[(i * 3) % n_rows])
    return bm


def poisoned_logits(n_rows: int, n_cols: int, dtype: torch.dtype, gen: torch.Generator) -> torch.Tensor:
    """Random logits with NaN / +-inf sprinkled in: an entry the kernel must leave alone keeps its
    exact bit pattern, so any stray write (or a missed one) shows up in a bitwise comparison."""
    x = (torch.randn(n_rows, n_cols, generator=gen) * 4).to(dtype)
    special = torch.rand(n_rows, n_cols, generator=gen)
    x[special < 0.01] = float("nan")
    x[(special >= 0.01) & (special < 0.015)] = float("inf")
    x[(special >= 0.015) & (special < 0.02)] = float("-inf")
    return x


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    int_dtype = {4: torch.int32, 2: torch.int16}[a.element_size()]
    return a.dtype == b.dtype and torch.equal(a.view(int_dtype), b.view(int_dtype))


# ------------------------------------------------------------------ the reference vs a Python loop


@pytest.mark.parametrize("n_cols,vocab,vocab_size", [(70, 70, None), (100, 64, None), (40, 96, None), (70, 96, 65)])
def test_reference_matches_python_bit_loop(n_cols, vocab, vocab_size):
    gen = torch.Generator().manual_seed(1)
    bm = random_bitmask(5, vocab, gen)
    x = torch.randn(5, n_cols, generator=gen)
    got = x.clone()
    apply_token_bitmask_inplace_reference(got, bm, vocab_size=vocab_size)
    words = bm.tolist()
    bound = min(n_cols, 32 * bm.shape[1]) if vocab_size is None else vocab_size
    for r in range(5):
        for t in range(n_cols):
            allowed = t < bound and (words[r][t // 32] >> (t % 32)) & 1 == 1
            expect = x[r, t].item() if allowed else float("-inf")
            assert got[r, t].item() == expect, (r, t)


def test_reference_log_softmax_matches_definition():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 90, generator=gen, dtype=torch.float64).float()
    bm = random_bitmask(4, 90, gen)
    lp, log_z = masked_log_softmax_reference(x, bm, 0.5)
    allowed = unpack_bitmask(bm, 90)
    for r in range(4):
        p = torch.softmax(x[r].double() / 0.5, 0)
        mass = p[allowed[r]].sum()
        if mass == 0:
            assert log_z[r] == float("-inf") and torch.all(lp[r] == float("-inf"))
            continue
        assert abs(log_z[r].item() - torch.log(mass).item()) < 1e-5
        expect = torch.where(allowed[r], torch.log(p / mass), torch.tensor(float("-inf"), dtype=torch.float64))
        assert torch.allclose(lp[r].double(), expect, atol=1e-5)


# ------------------------------------------------------------------ in-place apply


def size_grid(shapes):
    """(n_rows, n_cols, vocab, dtype) for every shape, dtype and B in {1, 7, 64}, except B=64 at
    the >100k vocabularies runs in float32 only (keeps the CPU suite fast; the kernels do not
    branch on dtype beyond the element width, which the B=1 and B=7 cases cover)."""
    grid = []
    for n_cols, vocab in shapes:
        for dtype in DTYPES:
            for n_rows in (1, 7, 64):
                if n_rows == 64 and n_cols > 100000 and dtype != torch.float32:
                    continue
                grid.append(pytest.param(n_rows, n_cols, vocab, dtype, id=f"B{n_rows}-V{n_cols}-bm{vocab}-{str(dtype)[6:]}"))
    return grid


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_rows,n_cols,vocab,dtype", size_grid(SHAPES))
def test_apply_matches_reference(device, n_rows, n_cols, vocab, dtype):
    gen = torch.Generator().manual_seed(n_rows * 7 + n_cols)
    bm = random_bitmask(n_rows, vocab, gen)
    x = poisoned_logits(n_rows, n_cols, dtype, gen)
    index_choices = [None, [i for i in range(n_rows) if i % 3 != 1]]
    if n_rows > 1:
        index_choices.append(torch.tensor([n_rows - 1, 0]))
    for indices in index_choices:
        expect = x.clone()
        apply_token_bitmask_inplace_reference(expect, bm, indices)
        got = x.to(device)
        dev_indices = indices.to(device) if isinstance(indices, torch.Tensor) else indices
        apply_token_bitmask_inplace(got, bm.to(device), dev_indices)
        assert same_bits(got.cpu(), expect), (indices,)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_vocab_size_and_padding(device, dtype):
    gen = torch.Generator().manual_seed(3)
    bm = random_bitmask(3, 160, gen)  # 5 words = 160 bits
    x = poisoned_logits(3, 200, dtype, gen)
    for vocab_size in (0, 1, 31, 32, 151, 160):
        expect = x.clone()
        apply_token_bitmask_inplace_reference(expect, bm, vocab_size=vocab_size)
        # independent check of the padding rule: everything from vocab_size on is -inf
        assert torch.all(expect[:, vocab_size:] == float("-inf"))
        got = x.to(device)
        apply_token_bitmask_inplace(got, bm.to(device), vocab_size=vocab_size)
        assert same_bits(got.cpu(), expect), vocab_size


@pytest.mark.parametrize("device", DEVICES)
def test_apply_strided_views_and_1d(device):
    gen = torch.Generator().manual_seed(4)
    base = poisoned_logits(6, 300, torch.bfloat16, gen)
    bm = random_bitmask(6, 256, gen)
    # row-strided view into a wider buffer (e.g. a model's padded output), rows 1,3,5
    expect = base.clone()
    apply_token_bitmask_inplace_reference(expect[1::2, :256], bm[1::2])
    got = base.to(device)
    apply_token_bitmask_inplace(got[1::2, :256], bm.to(device)[1::2])
    assert same_bits(got.cpu(), expect)
    # column-strided (transposed) view, and a non-contiguous bitmask
    xt = poisoned_logits(256, 6, torch.float32, gen)
    bm_t = random_bitmask(8, 6 * 32, gen).t().contiguous().t()[:6]  # column-major storage
    assert not bm_t.is_contiguous()
    expect = xt.clone()
    apply_token_bitmask_inplace_reference(expect.t(), bm_t)
    got = xt.to(device)
    apply_token_bitmask_inplace(got.t(), bm_t.to(device))
    assert same_bits(got.cpu(), expect)
    # 1-D logits and bitmask
    x1 = poisoned_logits(1, 100, torch.float16, gen)[0]
    bm1 = random_bitmask(1, 100, gen)[0]
    expect = x1.clone()
    apply_token_bitmask_inplace_reference(expect, bm1)
    got = x1.to(device)
    apply_token_bitmask_inplace(got, bm1.to(device))
    assert same_bits(got.cpu(), expect)


def test_apply_threaded_path_matches(monkeypatch):
    from corral.kernels import cpu

    monkeypatch.setenv("CORRAL_KERNEL_THREADS", "3")
    monkeypatch.setattr(cpu, "PARALLEL_MIN_ELEMENTS", 1)
    gen = torch.Generator().manual_seed(5)
    bm = random_bitmask(9, 5000, gen)
    x = poisoned_logits(9, 5000, torch.float32, gen)
    expect = x.clone()
    apply_token_bitmask_inplace_reference(expect, bm, [0, 2, 3, 8])
    got = x.clone()
    apply_token_bitmask_inplace(got, bm, [0, 2, 3, 8])
    assert same_bits(got, expect)
    finite = x.nan_to_num(nan=0.0, posinf=0.0)
    lp, lz = masked_log_softmax(finite, bm, 0.8)
    rlp, rlz = masked_log_softmax_reference(finite, bm, 0.8)
    assert_logprobs_close(lp, lz, rlp, rlz, finite / 0.8)


def test_matches_xgrammar_where_semantics_coincide():
    xgr = pytest.importorskip("xgrammar")
    gen = torch.Generator().manual_seed(6)
    for n_cols, vocab, indices in [(128256, 128256, None), (1024, 1024, [0, 2]), (1001, 1001, None)]:
        bm = random_bitmask(4, vocab, gen)
        x = torch.randn(4, n_cols, generator=gen).to(torch.bfloat16)
        ours, theirs = x.clone(), x.clone()
        apply_token_bitmask_inplace(ours, bm, indices)
        xgr.apply_token_bitmask_inplace(theirs, bm, indices=indices)
        assert same_bits(ours, theirs)
        # the same call spelled with xgrammar's keywords
        ours2 = x.clone()
        apply_token_bitmask_inplace(ours2, bm, vocab_size=n_cols, indices=indices)
        assert same_bits(ours2, theirs)


# ------------------------------------------------------------------ fused masked log-softmax


def assert_logprobs_close(lp, lz, rlp, rlz, scaled_logits, atol=2e-5):
    """Float32 results vs the float64 reference. Beyond a relative tolerance, allow for float32
    rounding of the scaled logits themselves (ulp(|z|) matters when |z| is large and logprob small)."""
    lp, lz = lp.cpu(), lz.cpu()
    assert lp.dtype == torch.float32 and lz.dtype == torch.float32
    assert not torch.isnan(lp).any() and not torch.isnan(lz).any()
    assert torch.equal(lp == float("-inf"), rlp == float("-inf"))
    assert torch.equal(lz == float("-inf"), rlz == float("-inf"))
    z = scaled_logits.double().reshape(rlp.shape[0] if rlp.dim() == 2 else 1, -1)
    row_scale = torch.where(torch.isfinite(z), z.abs(), torch.zeros_like(z)).amax(dim=1, keepdim=True)
    rounding = 1e-6 * row_scale.expand_as(z).reshape(rlp.shape)
    fin = torch.isfinite(rlp)
    tol = atol * (1 + rlp[fin].abs()) + rounding[fin]
    assert torch.all((lp[fin] - rlp[fin]).abs() <= tol), (lp[fin] - rlp[fin]).abs().max()
    fin_z = torch.isfinite(rlz)
    z_tol = atol * (1 + rlz[fin_z].abs()) + 1e-6 * row_scale.reshape(rlz.shape)[fin_z]
    assert torch.all((lz[fin_z] - rlz[fin_z]).abs() <= z_tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_rows,n_cols,vocab,dtype", size_grid(SHAPES[1:5]))
def test_masked_log_softmax_matches_reference(device, n_rows, n_cols, vocab, dtype):
    gen = torch.Generator().manual_seed(n_rows * 11 + n_cols)
    bm = random_bitmask(n_rows, vocab, gen)
    x = (torch.randn(n_rows, n_cols, generator=gen) * 5).to(dtype)
    x[0, : min(5, n_cols)] = float("-inf")  # logits already masked by someone else
    if n_rows > 4:
        x[4, 0] = 300.0  # a masked-or-allowed outlier far above the rest (log Z underflow)
    per_row_temps = torch.rand(n_rows, generator=gen) + 0.1
    even_rows = [i for i in range(n_rows) if i % 2 == 0]
    variants = [(per_row_temps, even_rows)]
    if n_rows * n_cols < 2_000_000:  # the float64 reference is the slow part at B=64, V=152k
        variants += [(0.7, None), (per_row_temps, None), (1.3, even_rows)]
    for temperature, indices in variants:
        rlp, rlz = masked_log_softmax_reference(x, bm, temperature, indices)
        dev_t = temperature.to(device) if isinstance(temperature, torch.Tensor) else temperature
        out = (
            torch.full((n_rows, n_cols), float("nan"), device=device),  # poisoned
            torch.full((n_rows,), float("nan"), device=device),
        )
        lp, lz = masked_log_softmax(x.to(device), bm.to(device), dev_t, indices, out=out)
        assert lp.data_ptr() == out[0].data_ptr()
        t_col = temperature.unsqueeze(1) if isinstance(temperature, torch.Tensor) else temperature
        assert_logprobs_close(lp, lz, rlp, rlz, x.double() / t_col)


@pytest.mark.parametrize("device", DEVICES)
def test_masked_log_softmax_edge_rows(device):
    """Hand-built rows with known answers."""
    x = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],  # two of four allowed: log Z = log 1/2
            [1.0, 2.0, 3.0, 4.0],  # nothing allowed
            [float("-inf")] * 4,  # allowed tokens all -inf: no mass
            [-200.0, 0.0, 0.0, 0.0],  # only the -200 token allowed: log Z ~ -200 - log 3
        ],
        device=device,
    )
    bm = torch.tensor([[0b0101], [0], [0b1111], [0b0001]], dtype=torch.int32, device=device)
    lp, lz = masked_log_softmax(x, bm, 1.0)
    lp, lz = lp.cpu(), lz.cpu()
    ninf = float("-inf")
    assert torch.allclose(lp[0], torch.tensor([-0.6931472, ninf, -0.6931472, ninf]))
    assert abs(lz[0].item() + 0.6931472) < 1e-6
    assert torch.all(lp[1] == ninf) and lz[1].item() == ninf
    assert torch.all(lp[2] == ninf) and lz[2].item() == ninf
    assert lp[3, 0].item() == 0.0 and torch.all(lp[3, 1:] == ninf)
    assert abs(lz[3].item() - (-200.0 - 1.0986123)) < 1e-4
    # padding columns (beyond the bitmask) are masked, 1-D input gives a 0-d log_z
    lp1, lz1 = masked_log_softmax(torch.zeros(40, device=device), torch.tensor([-1], dtype=torch.int32, device=device))
    assert lz1.shape == () and abs(lz1.item() - torch.log(torch.tensor(32 / 40)).item()) < 1e-6
    assert torch.all(lp1[32:] == ninf)


def test_cpu_half_conversion_is_exact_for_every_bit_pattern():
    """The CPU fused path converts float16/bfloat16 itself (numba has no float16): all 65536
    patterns of each must match torch's conversion bit for bit (NaNs: any NaN)."""
    import numpy as np

    from corral.kernels import cpu

    patterns = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    for dtype, is_bf16 in ((torch.float16, False), (torch.bfloat16, True)):
        out = np.empty(65536, np.float32)
        cpu._half_bits_to_float32(patterns.numpy(), out, is_bf16)
        expect = patterns.view(dtype).float().numpy()
        same = (out.view(np.int32) == expect.view(np.int32)) | (np.isnan(out) & np.isnan(expect))
        assert same.all(), dtype


# ------------------------------------------------------------------ errors


def test_errors_name_tensors_and_shapes():
    x = torch.zeros(4, 100)
    bm = allocate_token_bitmask(4, 100, pin_memory=False)
    with pytest.raises(ValueError, match=r"logits \(shape \(4, 100\), dtype torch.int64"):
        apply_token_bitmask_inplace(x.long(), bm)
    with pytest.raises(ValueError, match=r"bitmask \(shape \(4, 4\), dtype torch.int64.*int32"):
        apply_token_bitmask_inplace(x, bm.long())
    with pytest.raises(ValueError, match=r"bitmask \(shape \(2, 4\).*has 2 rows.*logits \(shape \(4, 100\)"):
        apply_token_bitmask_inplace(x, bm[:2])
    with pytest.raises(ValueError, match=r"must be 1-D \[V\] or 2-D"):
        apply_token_bitmask_inplace(x.reshape(2, 2, 100), bm)
    with pytest.raises(ValueError, match=r"same device"):
        apply_token_bitmask_inplace(x, bm.to("meta"))
    with pytest.raises(ValueError, match=r"vocab_size=129 but bitmask \(shape \(4, 4\)"):
        apply_token_bitmask_inplace(x, bm, vocab_size=129)
    with pytest.raises(ValueError, match=r"vocab_size=101 exceeds the 100 columns of logits"):
        apply_token_bitmask_inplace(torch.zeros(4, 100), allocate_token_bitmask(4, 128), vocab_size=101)
    with pytest.raises(ValueError, match=r"index 4 out of range"):
        apply_token_bitmask_inplace(x, bm, [0, 4])
    with pytest.raises(ValueError, match=r"index -1 out of range"):
        apply_token_bitmask_inplace(x, bm, torch.tensor([-1]))
    with pytest.raises(ValueError, match=r"indices must be integers"):
        apply_token_bitmask_inplace(x, bm, [0.5])
    with pytest.raises(ValueError, match=r"temperature must be > 0"):
        masked_log_softmax(x, bm, 0.0)
    with pytest.raises(ValueError, match=r"temperature \(shape \(3,\).*one value per row"):
        masked_log_softmax(x, bm, torch.ones(3))
    with pytest.raises(ValueError, match=r"out\[0\] \(logprobs\) \(shape \(4, 99\)"):
        masked_log_softmax(x, bm, 1.0, out=(torch.empty(4, 99), torch.empty(4)))
    with pytest.raises(ValueError, match=r"backend must be one of"):
        apply_token_bitmask_inplace(x, bm, backend="cuda")
    # nothing was written by the failed calls
    assert torch.all(x == 0)


def test_allocate_token_bitmask():
    bm = allocate_token_bitmask(3, 65, pin_memory=False)
    assert bm.shape == get_bitmask_shape(3, 65) == (3, 3)
    assert bm.dtype == torch.int32 and torch.all(bm == -1)
    x = torch.randn(3, 65)
    y = x.clone()
    apply_token_bitmask_inplace(y, bm)
    assert torch.equal(x, y)  # a fresh bitmask allows everything


# ------------------------------------------------------------------ Triton kernels, interpreted on CPU

_INTERPRETER_SCRIPT = textwrap.dedent(
    """
    import torch
    from corral.kernels import (apply_token_bitmask_inplace, apply_token_bitmask_inplace_reference,
                                masked_log_softmax, masked_log_softmax_reference)
    from corral.kernels._args import check_mask_call
    from corral.kernels.triton_kernels import apply_token_bitmask_inplace_triton
    gen = torch.Generator().manual_seed(0)
    def bits(a):
        return a.view({4: torch.int32, 2: torch.int16}[a.element_size()])
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for n_cols, vocab in ((5000, 4999), (77, 60), (50, 100)):
            bm = torch.randint(-2**31, 2**31 - 1, (3, (vocab + 31) // 32), dtype=torch.int32, generator=gen)
            bm[1] = 0
            x = (torch.randn(3, n_cols, generator=gen) * 3).to(dtype)
            for idx in (None, [0, 2]):
                a, b = x.clone(), x.clone()
                apply_token_bitmask_inplace(a, bm, idx, backend="triton")
                apply_token_bitmask_inplace_reference(b, bm, idx)
                assert torch.equal(bits(a), bits(b)), (dtype, n_cols, idx)
                t = torch.tensor([0.5, 1.0, 2.0])
                lp, lz = masked_log_softmax(x, bm, t, idx, backend="triton")
                rlp, rlz = masked_log_softmax_reference(x, bm, t, idx)
                assert torch.equal(lp == float("-inf"), rlp == float("-inf"))
                fin = torch.isfinite(rlp)
                assert (lp[fin] - rlp[fin]).abs().max() < 1e-4, (dtype, n_cols, idx)
                assert torch.equal(lz == float("-inf"), rlz == float("-inf"))
                fz = torch.isfinite(rlz)
                assert (lz[fz] - rlz[fz]).abs().max() < 1e-4
    # the fused kernel's split path (partial statistics per column chunk, then merge + write),
    # including chunks that fall past the end of the row
    from corral.kernels._args import check_temperature
    from corral.kernels.triton_kernels import masked_log_softmax_triton
    x = (torch.randn(3, 9000, generator=gen) * 3).to(torch.bfloat16)
    bm = torch.randint(-2**31, 2**31 - 1, (3, 282), dtype=torch.int32, generator=gen)
    bm[0, :200] = 0  # the row's maximum is likely masked
    t = torch.tensor([0.3, 1.0, 2.0])
    for idx, splits in ((None, 2), ([1, 2], 4), ([1, 2], 1)):
        rlp, rlz = masked_log_softmax_reference(x, bm, t, idx)
        out, lz = torch.full((3, 9000), float("nan")), torch.full((3,), float("nan"))
        masked_log_softmax_triton(check_mask_call(x, bm, idx, None), check_temperature(t, 3, x), out, lz, splits)
        assert torch.equal(out == float("-inf"), rlp == float("-inf")), splits
        fin = torch.isfinite(rlp)
        assert (out[fin] - rlp[fin]).abs().max() < 2e-4, splits
        assert (lz - rlz).abs().max() < 2e-4, splits
    # whole-word paths: all-ones words untouched, zero words written unread, mixed words read and
    # written whole; the last word (all ones) straddles the vocabulary bound and is masked past it.
    # Then the same bitmask stored column-major (the kernels need unit word stride).
    x = (torch.randn(2, 5000, generator=gen) * 3).to(torch.bfloat16)
    bm = torch.full((2, 157), -1, dtype=torch.int32)
    bm[0, ::3] = 0
    bm[1, 5:9] = 0x0F0F0F0F
    for mask in (bm, bm.t().contiguous().t()):
        for vocab_size in (4999, 5000, None):
            a, b = x.clone(), x.clone()
            apply_token_bitmask_inplace(a, mask, vocab_size=vocab_size, backend="triton")
            apply_token_bitmask_inplace_reference(b, bm, vocab_size=vocab_size)
            assert torch.equal(bits(a), bits(b)), vocab_size
        lp, lz = masked_log_softmax(x, mask, 1.0, backend="triton")
        rlp, rlz = masked_log_softmax_reference(x, bm, 1.0)
        assert torch.equal(lp == float("-inf"), rlp == float("-inf"))
    # both write strategies of the apply kernel on the same inputs: read-modify-write of mixed words
    # (limit -1) and store-only (every block qualifies), on random, sparse and mostly-full rows
    x = (torch.randn(3, 4500, generator=gen) * 3).to(torch.float16)
    bm = torch.randint(-2**31, 2**31 - 1, (3, 141), dtype=torch.int32, generator=gen)
    bm[1, torch.rand(141, generator=gen) < 0.9] = 0
    bm[2, torch.rand(141, generator=gen) < 0.9] = -1
    b = x.clone(); apply_token_bitmask_inplace_reference(b, bm, vocab_size=4490)
    for limit in (-1, 0, 3, 64):
        a = x.clone()
        apply_token_bitmask_inplace_triton(check_mask_call(a, bm, None, 4490), store_only_limit=limit)
        assert torch.equal(bits(a), bits(b)), limit
    # a device-side index tensor is not range-checked on the host: the kernel skips bad entries
    x = torch.randn(3, 200)
    bm = torch.zeros(3, 7, dtype=torch.int32)
    call = check_mask_call(x, bm, None, None)
    call.rows = torch.tensor([1, 7, -2], dtype=torch.int64)
    a = x.clone(); call.logits = a
    apply_token_bitmask_inplace_triton(call)
    b = x.clone(); apply_token_bitmask_inplace_reference(b, bm, [1])
    assert torch.equal(a, b)
    print("TRITON-INTERPRETER-OK")
    """
)


def test_triton_kernels_under_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _INTERPRETER_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "TRITON-INTERPRETER-OK" in proc.stdout, proc.stderr[-4000:]


def test_triton_kernels_compile_for_sm90():
    """Compile every Triton kernel variant through the real toolchain (TTIR -> PTX -> cubin for an
    H100) without a GPU: the interpreter checks semantics, this checks that the kernels are valid
    compiled Triton (types, constexpr branches, loop-carried values)."""
    triton = pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("kernels are interpreted functions under TRITON_INTERPRET=1")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from corral.kernels import triton_kernels as tk

    target = GPUTarget("cuda", 90, 32)

    def compile_kernel(fn, signature, constexprs, num_warps):
        try:
            with warnings.catch_warnings():  # triton 3.9's notice about its FP-fusion default
                warnings.simplefilter("ignore", UserWarning)
                return triton.compile(ASTSource(fn, signature, constexprs), target=target, options={"num_warps": num_warps})
        except Exception as exc:  # a triton build without the CUDA toolchain
            if "ptxas" in str(exc) or "not found" in str(exc):
                pytest.skip(f"no CUDA toolchain in this triton: {exc}")
            raise

    for dtype, rows in (("fp32", None), ("bf16", "*i64"), ("fp16", None)):
        sig = {"logits_ptr": f"*{dtype}", "bitmask_ptr": "*i32", "rows_ptr": rows or "constexpr",
               "row_limit": "i32", "n_cols": "i32", "vocab_bound": "i32", "logits_row_stride": "i32",
               "logits_col_stride": "constexpr", "bitmask_row_stride": "i32", "store_only_limit": "i32",
               "BLOCK": "constexpr"}
        consts = {"logits_col_stride": 1, "BLOCK": tk.APPLY_BLOCK}
        if rows is None:
            consts["rows_ptr"] = None
        kernel = compile_kernel(tk._apply_bitmask_kernel, sig, consts,
                                tk._num_warps_for(4 if dtype == "fp32" else 2, tk.APPLY_BLOCK))
        assert "st.global" in kernel.asm["ptx"]
    common = {"bitmask_ptr": "*i32", "temperature": "fp32", "n_cols": "i32", "vocab_bound": "i32",
              "logits_row_stride": "i32", "logits_col_stride": "constexpr", "bitmask_row_stride": "i32"}
    for dtype, row_map, temps in (("bf16", "*i64", "*fp32"), ("fp32", None, None)):
        consts = {"logits_col_stride": 1, "BLOCK": tk.FUSED_BLOCK}
        if row_map is None:
            consts["row_map_ptr"] = None
        if temps is None:
            consts["temperature_ptr"] = None
        head = {"logits_ptr": f"*{dtype}", "row_map_ptr": row_map or "constexpr",
                "temperature_ptr": temps or "constexpr", **common}
        compile_kernel(tk._masked_log_softmax_kernel,
                       {**head, "out_ptr": "*fp32", "log_z_ptr": "*fp32", "out_row_stride": "i32", "BLOCK": "constexpr"},
                       consts, 8)
        split_consts = {**consts, "SPLITS": 8}
        compile_kernel(tk._masked_log_softmax_partial_kernel,
                       {**head, "partials_ptr": "*fp32", "chunk": "i32", "SPLITS": "constexpr", "BLOCK": "constexpr"},
                       split_consts, 8)
        compile_kernel(tk._masked_log_softmax_finish_kernel,
                       {**head, "partials_ptr": "*fp32", "out_ptr": "*fp32", "log_z_ptr": "*fp32", "chunk": "i32",
                        "out_row_stride": "i32", "SPLITS": "constexpr", "BLOCK": "constexpr"},
                       split_consts, 8)
