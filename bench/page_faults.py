"""Mask time and page faults per mask in a fresh process, as a server's first requests meet them.

    python -m bench.page_faults [--docs 10] [--seed 5] [--reserve-mb 32]

bench.engine's grammars and texts, with corral alone: each text is tokenized when its turn comes
(bench.engine tokenizes every text up front, which grows and frees the heap before any mask), and
each mask's minor page faults are read from getrusage around it. ``--reserve-mb`` is the bitmask
rows faulted in at warm-up (corral/masks/row_pool.py; 0: none); compare runs of both in turn, the
box's own noise being ~10-30% between runs. Prints p50/p99/mean mask time, the faults, and the time
spent in masks that faulted.
"""
from __future__ import annotations

import argparse
import gc
import random
import resource
import time

import numpy as np

from bench.engine import LARK, REGEXES, _texts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--reserve-mb", type=float, default=None, help="default: corral's RESERVE_MB")
    args = ap.parse_args(argv)

    import corral
    from corral.masks.matcher import RESERVE_MB, warm_up_mask_kernels
    from corral.masks.tokenizers_offline import load_offline_tokenizer

    tok = load_offline_tokenizer("llama3")
    rnd = random.Random(args.seed)
    work = [("regex", k, v) for k, v in REGEXES.items()] + [("lark", k, v) for k, v in LARK.items()]
    texts = {name: _texts(kind, src, args.docs, rnd) for kind, name, src in work}
    t0 = time.perf_counter()
    vocab = corral.Vocabulary.from_hf(tok)
    reserve = RESERVE_MB if args.reserve_mb is None else args.reserve_mb
    warm_up_mask_kernels(vocab, reserve_mb=reserve)
    setup_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()
    times, faults = [], []
    for kind, name, src in work:
        compiled = corral.compile_regex(src, vocab) if kind == "regex" else corral.compile_lark(src, vocab)
        for text in texts[name]:
            ids = tok.encode(text, add_special_tokens=False)
            m = compiled.matcher()
            for t in ids:
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                t0 = time.perf_counter()
                m.next_token_bits()
                times.append(time.perf_counter() - t0)
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
                if not m.accept_token(t):
                    raise SystemExit(f"{name}: token {t} rejected")
    us = np.array(times) * 1e6
    f = np.array(faults)
    print(f"reserve {reserve:g} MB, setup {setup_s:.2f} s, {len(us)} masks: p50 {np.percentile(us, 50):.1f} µs, "
          f"p99 {np.percentile(us, 99):.0f} µs, mean {us.mean():.1f} µs; page faults {int(f.sum())} in "
          f"{int((f > 0).sum())} masks, which took {us[f > 0].sum() / 1e3:.1f} of {us.sum() / 1e3:.1f} ms")


if __name__ == "__main__":
    main()
