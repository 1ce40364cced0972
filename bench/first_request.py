"""A fresh process's first JSON Schema requests, with and without ``corral.warm_up``.

    python -m bench.first_request [--no-warm-up]

Loads the Llama-3 vocabulary, runs ``corral.warm_up`` (or only the mask kernels' warm-up, what
the benchmarks did before it existed), then times compile + first mask of two small tool-call-like
schemas that the warm-up schema does not contain. Run each mode in its own process.
"""
from __future__ import annotations

import argparse
import time

SCHEMAS = [
    {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
     "required": ["city"]},
    {"type": "object", "properties": {"d": {"type": "string", "format": "date"}, "n": {"type": "number", "minimum": 0}}},
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-warm-up", action="store_true", help="only load the mask kernels")
    args = ap.parse_args(argv)

    import corral
    from corral.masks.matcher import warm_up_mask_kernels
    from corral.masks.tokenizers_offline import load_offline_tokenizer

    vocab = corral.Vocabulary.from_hf(load_offline_tokenizer("llama3"))
    t0 = time.perf_counter()
    if args.no_warm_up:
        warm_up_mask_kernels(vocab)
    else:
        corral.warm_up(vocab)
    setup_s = time.perf_counter() - t0
    ttfm = []
    for schema in SCHEMAS:
        t0 = time.perf_counter()
        corral.compile_json_schema(schema, vocab).matcher().next_token_bits()
        ttfm.append((time.perf_counter() - t0) * 1e3)
    print(f"{'mask kernels only' if args.no_warm_up else 'corral.warm_up'}: setup {setup_s:.2f} s, "
          f"first requests' compile + first mask: {', '.join(f'{x:.1f} ms' for x in ttfm)}")


if __name__ == "__main__":
    main()
