"""Mask-kernel benchmark: corral's apply_token_bitmask_inplace / masked_log_softmax vs peers.

    python -m bench.kernels                    # CPU (always) and CUDA (when present)
    python -m bench.kernels --device cpu --batch-sizes 1,16,256,4096
    python -m bench.kernels --device cuda      # B = 1,16,256,4096, V = 128k, 256k (CUDA events)

Peers measured in the same run: xgrammar's apply_token_bitmask_inplace (CPU path on CPU; "triton"
and "cuda" backends on GPU, when they load), a vectorized torch reference (XGrammar's torch-native
formulation), and for the fused variant the unfused pair "mask, then log_softmax" (which does not
even compute log Z). Times are medians over repeats after warm-up: perf_counter on CPU (torch and
corral pinned to one thread unless --threads says otherwise, xgrammar's CPU path is single-threaded),
CUDA events on GPU. Writes bench/results/kernels_<device>.{json,md,png}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
if __package__ in (None, ""):  # `python bench/kernels.py` also works
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.kernels import allocate_token_bitmask, apply_token_bitmask_inplace, masked_log_softmax  # noqa: E402

# ----------------------------------------------------------------------------------------- inputs


def make_bitmask(n_rows: int, vocab: int, pattern: str, gen: torch.Generator) -> torch.Tensor:
    """random: every bit a coin flip (worst case for branchy code); sparse: ~0.4% of tokens allowed
    in short runs (a JSON structural state); dense: ~99% allowed (inside a string)."""
    bm = allocate_token_bitmask(n_rows, vocab, pin_memory=False)
    n_words = bm.shape[1]
    if pattern == "random":
        bm.copy_(torch.randint(-(2**31), 2**31 - 1, bm.shape, dtype=torch.int32, generator=gen))
    elif pattern == "sparse":
        bm.zero_()
        hot = torch.rand(bm.shape, generator=gen) < 0.03
        bm[hot] = torch.randint(0, 256, (int(hot.sum()),), dtype=torch.int32, generator=gen)
    elif pattern == "dense":
        cold = torch.rand(bm.shape, generator=gen) < 0.05
        bm[cold] = ~(torch.randint(0, 2**20, (int(cold.sum()),), dtype=torch.int32, generator=gen) & 0x0F0F0F)
    else:
        raise ValueError(pattern)
    assert bm.shape[1] == n_words
    return bm


def torch_reference_apply(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Vectorized torch formulation (XGrammar's torch-native kernel): expand bits, masked_fill."""
    vocab = logits.shape[-1]
    bits = (bitmask.unsqueeze(-1) >> torch.arange(32, device=bitmask.device, dtype=torch.int32)) & 1
    allowed = bits.reshape(bitmask.shape[0], -1)[:, :vocab].bool()
    logits.masked_fill_(~allowed, float("-inf"))


# ----------------------------------------------------------------------------------------- timers


def time_cpu(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e6)
    return samples


def time_cuda(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e3)
    return samples


# ------------------------------------------------------------------------------- implementations


def apply_impls(device: str) -> dict:
    """name -> fn(logits, bitmask) for the in-place apply."""
    impls = {"corral": lambda x, bm: apply_token_bitmask_inplace(x, bm)}
    try:
        import xgrammar as xgr

        backends = ["cpu"] if device == "cpu" else ["triton", "cuda"]
        for backend in backends:
            def run(x, bm, backend=backend):
                xgr.apply_token_bitmask_inplace(x, bm, backend=backend)

            impls[f"xgrammar-{backend}"] = run
    except ImportError:
        pass
    impls["torch-ref"] = torch_reference_apply
    return impls


def fused_impls() -> dict:
    """name -> fn(logits, bitmask, temperature) for the fused variant and its unfused baseline."""

    def unfused(x, bm, t):
        y = x.float() / t  # a copy: the unfused path must not clobber the model's logits either
        apply_token_bitmask_inplace(y, bm)
        return torch.log_softmax(y, dim=-1)

    return {
        "corral-fused": lambda x, bm, t: masked_log_softmax(x, bm, t),
        "mask+log_softmax": unfused,
    }


# ------------------------------------------------------------------------------------------ suite


def run_device(device: str, args) -> list[dict]:
    from tqdm import tqdm

    timer = time_cuda if device == "cuda" else time_cpu
    gen = torch.Generator().manual_seed(0)
    cuda_gen = torch.Generator(device="cuda").manual_seed(0) if device == "cuda" else None
    records = []
    plan = []
    for vocab in args.vocab_sizes:
        for batch in args.batch_sizes:
            for dtype_name in args.dtypes:
                for pattern in args.patterns:
                    plan.append(("apply", vocab, batch, dtype_name, pattern))
                if not args.no_fused and (device == "cuda" or batch <= args.max_fused_cpu_batch):
                    plan.append(("fused", vocab, batch, dtype_name, "random"))
    impls_apply = apply_impls(device)
    broken: set[str] = set()
    for op, vocab, batch, dtype_name, pattern in tqdm(plan, desc=f"kernels[{device}]", file=sys.stderr):
        dtype = getattr(torch, dtype_name)
        if device == "cuda":  # generate on the device: a 4096 x 256k randn on the host takes seconds
            logits = (torch.randn(batch, vocab, generator=cuda_gen, device=device) * 3).to(dtype)
        else:
            logits = (torch.randn(batch, vocab, generator=gen) * 3).to(dtype)
        bitmask = make_bitmask(batch, vocab, pattern, gen).to(device)
        big = batch * vocab
        repeats = max(3, min(args.repeats, int(args.repeats * 2e6 / big) + 3)) if device == "cpu" else args.repeats
        impls = impls_apply if op == "apply" else fused_impls()
        for name, fn in impls.items():
            if name in broken:
                continue
            if name == "torch-ref" and device == "cpu" and big > 64 * 1024 * 1024:
                continue  # its [B, W, 32] int32 temporary would be > 8 GiB
            try:
                if op == "apply":
                    samples = timer(lambda: fn(logits, bitmask), repeats, args.warmup)
                else:
                    samples = timer(lambda: fn(logits, bitmask, 0.7), repeats, args.warmup)
            except Exception as exc:  # a peer backend that does not load here (e.g. no nvcc)
                print(f"[kernels] {name} unavailable: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                broken.add(name)
                continue
            records.append(
                {
                    "device": device,
                    "op": op,
                    "impl": name,
                    "batch": batch,
                    "vocab": vocab,
                    "dtype": dtype_name,
                    "pattern": pattern,
                    "median_us": statistics.median(samples),
                    "min_us": min(samples),
                    "repeats": len(samples),
                }
            )
        del logits, bitmask
    return records


def markdown_table(records: list[dict]) -> str:
    """One row per (op, V, B, dtype, pattern); one column per implementation; plus corral's speedup
    over the best peer (for the fused op: over the unfused pair)."""
    keys = sorted({(r["op"], r["vocab"], r["batch"], r["dtype"], r["pattern"]) for r in records},
                  key=lambda k: (k[0], k[1], k[3], k[4], k[2]))
    impls = list(dict.fromkeys(r["impl"] for r in records))
    by_key = {(r["op"], r["vocab"], r["batch"], r["dtype"], r["pattern"], r["impl"]): r["median_us"] for r in records}
    lines = [
        "| op | V | B | dtype | mask | " + " | ".join(f"{i} (µs)" for i in impls) + " | corral speedup vs best peer |",
        "|---|---|---|---|---|" + "---|" * len(impls) + "---|",
    ]
    for key in keys:
        cells = [by_key.get(key + (i,)) for i in impls]
        ours_name = "corral" if key[0] == "apply" else "corral-fused"
        ours = by_key.get(key + (ours_name,))
        peers = [by_key[key + (i,)] for i in impls if i != ours_name and key + (i,) in by_key]
        speedup = f"{min(peers) / ours:.2f}x" if ours and peers else "—"
        fmt = ["—" if c is None else (f"{c:.1f}" if c < 100 else f"{c:,.0f}") for c in cells]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | " + " | ".join(fmt) + f" | {speedup} |")
    return "\n".join(lines)


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["op"], r["vocab"], r["dtype"], r["pattern"]) for r in records})
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (op, vocab, dtype, pattern) in zip(axes.flat, panels):
        sel = [r for r in records if (r["op"], r["vocab"], r["dtype"], r["pattern"]) == (op, vocab, dtype, pattern)]
        for impl in dict.fromkeys(r["impl"] for r in sel):
            pts = sorted((r["batch"], r["median_us"]) for r in sel if r["impl"] == impl)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=impl)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size B")
        ax.set_ylabel("median time per call (µs)")
        ax.set_title(f"{op}, V={vocab}, {dtype}, {pattern} mask", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CPU, plus CUDA when available")
    p.add_argument("--batch-sizes", default=None, help="comma list; default CPU 1,16,256,4096, CUDA 1,16,256,4096")
    p.add_argument("--vocab-sizes", default=None, help="comma list; default CPU 128256, CUDA 128256,256000")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--patterns", default="random,sparse,dense")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch and corral (default 1)")
    p.add_argument("--max-fused-cpu-batch", type=int, default=256)
    p.add_argument("--no-fused", action="store_true")
    p.add_argument("--out-dir", default=str(RESULTS_DIR))
    args = p.parse_args(argv)
    args.dtypes = args.dtypes.split(",")
    args.patterns = args.patterns.split(",")

    devices = ["cpu"] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            sys.exit("--device cuda: no CUDA device here")
        devices.append("cuda")
    torch.set_num_threads(args.threads)
    os.environ["CORRAL_KERNEL_THREADS"] = str(args.threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for device in devices:
        dev_args = argparse.Namespace(**vars(args))
        dev_args.batch_sizes = [int(b) for b in (args.batch_sizes or "1,16,256,4096").split(",")]
        default_vocab = "128256" if device == "cpu" else "128256,256000"
        dev_args.vocab_sizes = [int(v) for v in (args.vocab_sizes or default_vocab).split(",")]
        records = run_device(device, dev_args)
        machine = torch.cuda.get_device_name() if device == "cuda" else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        meta = {
            "command": "python -m bench.kernels " + " ".join(sys.argv[1:] if argv is None else argv),
            "device": machine,
            "torch": torch.__version__,
            "threads": args.threads,
            "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }
        try:
            from importlib.metadata import version

            meta["xgrammar"] = version("xgrammar")
        except Exception:
            pass
        table = markdown_table(records)
        header = f"## Mask kernels on {device} ({machine})\n\n`{meta['command']}` at {meta['time']}; " \
                 f"torch {meta['torch']}, xgrammar {meta.get('xgrammar', 'n/a')}, threads={args.threads}.\n\n"
        print(header + table + "\n")
        (out_dir / f"kernels_{device}.json").write_text(json.dumps({"meta": meta, "records": records}, indent=1))
        (out_dir / f"kernels_{device}.md").write_text(header + table + "\n")
        plot(records, out_dir / f"kernels_{device}.png")
        print(f"wrote {out_dir}/kernels_{device}.{{json,md,png}}", file=sys.stderr)


if __name__ == "__main__":
    main()
