"""Decode time per output token with and without constraints: same model, same prompts, one run.

    python bench/decode_speed.py                        # CPU, the packaged SmolLM2-135M-Instruct
    python bench/decode_speed.py --device cuda --random-llama8b   # GPU: random Llama-3-8B shape, bf16

Rows (all greedy, corral's own KV-cache loop unless noted):
  unconstrained            the loop with no grammar (the baseline)
  constrained, no jump     JSON Schema masks, one forward per output token
  constrained, jump        plus verified jump-forward drafts
  HF generate              transformers' model.generate, without / with corral.LogitsProcessor
Every configuration first runs once unmeasured over every prompt group (--warmup-rounds).
Reported: ms per output token (wall / tokens) and TPOT (decode time per token after the first, the
prefill step excluded: constrained outputs end sooner, so wall / tokens charges them more prefill per
token), each with its ratio to the unconstrained loop, mask time per token (computed on a
worker thread during the forward) and the part of it the loop waited for, forwards per output token,
and per forward step: the forward's time (synchronized) and everything else (host ms: input
assembly, mask wait, masking, sampling, matcher updates).
Prints a table and saves a PNG (--png).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import corral  # noqa: E402
from corral.decoding import LogitsProcessor, format_prompt, generate, load_model  # noqa: E402
from corral.decoding.generate import DEFAULT_SCHEMA_OPTIONS  # noqa: E402

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "email": {"type": "string", "format": "email"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4},
        },
        "required": ["name", "age", "email", "tags"],
    },
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"enum": ["France", "Germany", "Italy", "Spain", "Other"]},
            "population": {"type": "integer", "minimum": 0},
            "coordinates": {
                "type": "object",
                "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                "required": ["lat", "lon"],
            },
            "capital": {"type": "boolean"},
        },
        "required": ["city", "country", "population", "coordinates", "capital"],
    },
]
PROMPTS = [
    "Describe a software engineer called Ada Lovelace as a JSON record.",
    "Give me the JSON record of Paris.",
    "Invent a person who likes climbing and chess; answer in JSON.",
    "Describe the city of Munich as JSON.",
]


def random_llama8b(device: str, layers: int):
    """A randomly initialised Llama-3-8B-shaped model in bf16 and the (offline) Llama-3 tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from corral.masks.tokenizers_offline import load_offline_tokenizer

    tokenizer = load_offline_tokenizer("llama3")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192, rope_theta=500000.0,
        bos_token_id=128000, eos_token_id=128001,
    )
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.eval()
    return model, tokenizer


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_own_loop(model, tokenizer, prompts, grammars, max_tokens, jump, device, chat):
    sync(device)
    started = time.perf_counter()
    results = generate(model, tokenizer, prompts, grammars, max_new_tokens=max_tokens, jump_forward=jump, chat=chat)
    sync(device)
    elapsed = time.perf_counter() - started
    steps = results[0].steps
    tokens = sum(len(r.token_ids) for r in results)
    return {
        "seconds": elapsed,
        "tokens": tokens,
        # the prefill step (prompt forward + first token); decode time per token excludes it, because
        # a constrained output that ends sooner would otherwise carry more prefill per token
        "prefill_s": steps[0].forward_s + steps[0].mask_wait_s + steps[0].sample_s if steps else 0.0,
        "rows": len(results),
        "forwards": len(steps),
        "forward_s": sum(s.forward_s for s in steps),
        "mask_s": sum(s.mask_s for s in steps),
        "mask_wait_s": sum(s.mask_wait_s for s in steps),
        "forced": sum(r.num_forced for r in results),
        "finished": sum(r.finished for r in results),
        "texts": [r.text for r in results],
    }


def run_hf_generate(model, tokenizer, prompts, grammar, max_tokens, device, chat):
    from transformers import LogitsProcessorList

    texts = [format_prompt(tokenizer, p, chat=chat) for p in prompts]
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat).to(device)
    processors = LogitsProcessorList([LogitsProcessor(grammar, tokenizer)]) if grammar is not None else None
    sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**batch, logits_processor=processors, max_new_tokens=max_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    sync(device)
    elapsed = time.perf_counter() - started
    new = out[:, batch["input_ids"].shape[1]:]
    eos = {tokenizer.pad_token_id, tokenizer.eos_token_id}
    tokens = 0
    for row in new.tolist():
        tokens += next((i for i, t in enumerate(row) if t in eos), len(row))
    return {"seconds": elapsed, "tokens": tokens, "forwards": new.shape[1],
            "mask_s": processors[0].mask_seconds if processors else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model path (default: packaged SmolLM2-135M-Instruct)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--random-llama8b", action="store_true", help="random Llama-3-8B-shaped bf16 model (GPU)")
    parser.add_argument("--llama-layers", type=int, default=32, help="layers of the random Llama (32 = 8B)")
    parser.add_argument("--batch", type=int, default=1, help="prompts decoded together (1 = one at a time)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers model.generate rows")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="unmeasured passes over every configuration")
    parser.add_argument("--png", default=str(ROOT / "bench" / "results" / "decode_speed.png"))
    args = parser.parse_args()

    if args.random_llama8b:
        model, tokenizer = random_llama8b(args.device, args.llama_layers)
        chat = False
        label = f"random Llama-3-8B shape ({args.llama_layers} layers, bf16)"
    else:
        model, tokenizer = load_model(args.model, device=args.device)
        chat = None
        label = args.model or "SmolLM2-135M-Instruct"
    vocab = corral.Vocabulary.from_hf(tokenizer)
    compile_started = time.perf_counter()
    grammars = [corral.compile_json_schema(s, vocab, **DEFAULT_SCHEMA_OPTIONS) for s in SCHEMAS]
    compile_ms = (time.perf_counter() - compile_started) * 1e3 / len(SCHEMAS)
    prompts = [p + "\nSchema: " + json.dumps(SCHEMAS[i % 2]) for i, p in enumerate(PROMPTS)]
    prompt_grammars = [grammars[i % 2] for i in range(len(PROMPTS))]

    configs = [("unconstrained", None, False), ("constrained, no jump", "g", False), ("constrained, jump", "g", True)]
    groups = [list(range(i, min(i + args.batch, len(prompts)))) for i in range(0, len(prompts), args.batch)]
    # Warm-up: one unmeasured pass of every configuration over every prompt group. First forwards at a
    # new sequence length pay for the CUDA allocator growing its pool and for kernel selection (on an
    # H100 this made whichever configuration ran first 1.5x slower), first masks for the lazy caches.
    for _ in range(args.warmup_rounds):
        for group in tqdm(groups, desc="warm-up"):
            for name, use, jump in configs:
                grams = [prompt_grammars[i] for i in group] if use else None
                run_own_loop(model, tokenizer, [prompts[i] for i in group], grams, args.max_tokens, jump,
                             args.device, chat)
    totals = {name: {"seconds": 0.0, "tokens": 0, "prefill_s": 0.0, "rows": 0, "forwards": 0, "forward_s": 0.0,
                     "mask_s": 0.0, "mask_wait_s": 0.0, "forced": 0, "finished": 0} for name, _, _ in configs}
    for group in tqdm(groups, desc="prompt groups"):
        # interleave the configurations per group so machine-load drift hits them alike
        for name, use, jump in configs:
            grams = [prompt_grammars[i] for i in group] if use else None
            r = run_own_loop(model, tokenizer, [prompts[i] for i in group], grams, args.max_tokens, jump,
                             args.device, chat)
            for key in totals[name]:
                totals[name][key] += r[key]
    hf_rows = {}
    if not args.no_hf:
        for name, grammar_index in (("HF generate", None), ("HF generate + LogitsProcessor", 0)):
            agg = {"seconds": 0.0, "tokens": 0, "forwards": 0, "mask_s": 0.0}
            for i in tqdm(range(0, len(prompts), 2), desc=name):  # prompts of the same schema
                r = run_hf_generate(model, tokenizer, prompts[i:i + 1], None if grammar_index is None else
                                    prompt_grammars[i], args.max_tokens, args.device, chat)
                for key in agg:
                    agg[key] += r[key]
            hf_rows[name] = agg

    base = totals["unconstrained"]["seconds"] / max(totals["unconstrained"]["tokens"], 1)

    def decode_per_token(t):
        return (t["seconds"] - t["prefill_s"]) / max(t["tokens"] - t["rows"], 1)

    base_decode = decode_per_token(totals["unconstrained"])
    print(f"\nmodel: {label}; device: {args.device}; torch threads: {torch.get_num_threads()}; "
          f"{len(prompts)} prompts, batch {args.batch}, max {args.max_tokens} tokens, greedy; "
          f"compile {compile_ms:.1f} ms/schema")
    header = f"{'loop':32} {'tokens':>6} {'ms/token':>9} {'vs free':>8} {'TPOT ms':>8} {'vs free':>8} " \
             f"{'mask ms/tok':>11} {'waited':>8} {'fwd/token':>9} {'fwd ms':>7} {'host ms':>7} {'forced':>6} {'done':>5}"
    print(header)
    print("-" * len(header))
    plot_names, plot_values = [], []
    for name, t in totals.items():
        per = t["seconds"] / max(t["tokens"], 1)
        tpot = decode_per_token(t)
        print(f"{name:32} {t['tokens']:6d} {per * 1e3:9.2f} {per / base:7.3f}x {tpot * 1e3:8.2f} {tpot / base_decode:7.3f}x "
              f"{t['mask_s'] / max(t['tokens'], 1) * 1e3:11.3f} "
              f"{t['mask_wait_s'] / max(t['tokens'], 1) * 1e3:8.3f} {t['forwards'] / max(t['tokens'], 1):9.3f} "
              f"{t['forward_s'] / max(t['forwards'], 1) * 1e3:7.2f} "
              f"{(t['seconds'] - t['forward_s']) / max(t['forwards'], 1) * 1e3:7.2f} "
              f"{t['forced']:6d} {t['finished']:5d}")
        plot_names.append(name)
        plot_values.append(per * 1e3)
    for name, t in hf_rows.items():
        per = t["seconds"] / max(t["tokens"], 1)
        print(f"{name:32} {t['tokens']:6d} {per * 1e3:9.2f} {'':8} {'':8} {'':8} {t['mask_s'] / max(t['tokens'], 1) * 1e3:11.3f} "
              f"{'':8} {t['forwards'] / max(t['tokens'], 1):9.3f}")
        plot_names.append(name)
        plot_values.append(per * 1e3)
    saved = totals["constrained, no jump"]["forwards"] / max(totals["constrained, no jump"]["tokens"], 1) - \
        totals["constrained, jump"]["forwards"] / max(totals["constrained, jump"]["tokens"], 1)
    print(f"jump-forward saves {saved:.3f} forwards per output token")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.barh(plot_names[::-1], plot_values[::-1], color="tab:blue")
    ax.set_xlabel("ms per output token (lower is better)")
    ax.set_title(f"corral decode speed: {label}, {args.device}", fontsize=9)
    for y, v in enumerate(plot_values[::-1]):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=8)
    fig.tight_layout()
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=120)
    print(f"saved {args.png}")


if __name__ == "__main__":
    main()
