"""Launch-parameter sweep for corral's Triton apply kernel (CUDA only): every (BLOCK, num_warps,
store-only limit) variant is checked against the torch reference on fresh random inputs, then timed with CUDA events
(median of repeats) for several batch sizes and mask patterns. Prints one table; picks nothing by
itself — the defaults in corral/kernels/triton_kernels.py are set from its output.

    python -m bench.kernel_variants [--vocab 128256] [--dtype bfloat16]
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.kernels import make_bitmask, time_cuda  # noqa: E402
from corral.kernels import apply_token_bitmask_inplace_reference  # noqa: E402
from corral.kernels._args import check_mask_call  # noqa: E402
from corral.kernels.triton_kernels import apply_token_bitmask_inplace_triton  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab", type=int, default=128256)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--batch-sizes", default="1,256,4096")
    p.add_argument("--blocks", default="2048,4096,8192")
    p.add_argument("--warps", default="2,4,8,16")
    p.add_argument("--store-only-limits", default="-1,16", help="mixed words per block written without a read")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs CUDA")
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    variants = list(itertools.product([int(b) for b in args.blocks.split(",")], [int(w) for w in args.warps.split(",")],
                                      [int(x) for x in args.store_only_limits.split(",")]))
    cases = list(itertools.product([int(b) for b in args.batch_sizes.split(",")], ["random", "sparse", "dense"]))
    times: dict[tuple, float] = {}
    for batch, pattern in cases:
        logits = (torch.randn(batch, args.vocab, device="cuda") * 3).to(dtype)
        bitmask = make_bitmask(batch, args.vocab, pattern, gen).to("cuda")
        expect = logits.clone()
        apply_token_bitmask_inplace_reference(expect, bitmask)
        for block, warps, limit in variants:
            got = logits.clone()
            apply_token_bitmask_inplace_triton(check_mask_call(got, bitmask), block=block, num_warps=warps,
                                               store_only_limit=limit)
            if not torch.equal(got.view(torch.int16 if dtype != torch.float32 else torch.int32),
                               expect.view(torch.int16 if dtype != torch.float32 else torch.int32)):
                sys.exit(f"variant BLOCK={block} warps={warps} limit={limit} is wrong on B={batch} {pattern}")
            work = logits.clone()
            call = check_mask_call(work, bitmask)
            samples = time_cuda(lambda: apply_token_bitmask_inplace_triton(call, block=block, num_warps=warps,
                                                                           store_only_limit=limit),
                                args.repeats, 3)
            times[(batch, pattern, block, warps, limit)] = statistics.median(samples)
        del logits, bitmask, expect
    head = f"{'BLOCK':>6} {'warps':>5} {'limit':>5} " + " ".join(f"{f'B={b} {pt}':>14}" for b, pt in cases)
    print(f"apply kernel variants, V={args.vocab}, {args.dtype}, median µs ({torch.cuda.get_device_name()})")
    print(head)
    for block, warps, limit in variants:
        print(f"{block:6d} {warps:5d} {limit:5d} " +
              " ".join(f"{times[(b, pt, block, warps, limit)]:14.1f}" for b, pt in cases))


if __name__ == "__main__":
    main()
