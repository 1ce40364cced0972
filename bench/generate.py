"""JSONSchemaBench-style end-to-end generation: coverage, compliance and speed with a real model.

For a deterministic sample of JSONSchemaBench schemas (the MaskBench records marked
``in_jsonschemabench``, spread round-robin over the splits), each engine generates greedily from the
same prompt (a system line asking for a JSON object matching the schema, then the schema), and we
record per schema and engine:

  declared   the engine compiled the schema (declared coverage = declared / schemas);
  valid      the output parses and validates with ``jsonschema`` Draft 2020-12 with format checks
             (empirical coverage = valid / schemas; compliance = valid / declared);
  compile_s, ttft_s (time to first token, prefill included), tpot_s (time per output token after the
             first), n_tokens, stop (eos | max_new_tokens | error).

Engines: ``unconstrained`` (the same model without constraints: the speed baseline and the
model's own validity), ``corral`` (corral's transformers LogitsProcessor inside ``model.generate``,
the same loop as the peers, the schema compiled with the full JSON Schema language),
``corral-generate`` (corral's own decode loop with jump-forward, the schema compiled with corral's
generation defaults as ``corral generate`` compiles it: ``DEFAULT_SCHEMA_OPTIONS``),
``xgrammar`` (its transformers LogitsProcessor) and ``llguidance`` (a minimal transformers processor
over LLMatcher written here: llguidance 1.9 ships no transformers processor). Engines that are not
importable are skipped with a message. Everything runs in this process (model loading dominates).
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from bench import MASKBENCH_DIR, default_out_dir, machine_description
from bench.report import markdown_table, percentiles

__all__ = ["run_generate", "sample_schemas", "write_generate_report"]

JSONSCHEMABENCH_SPLITS = ("Glaiveai2K", "Github_trivial", "Github_easy", "Github_medium", "Github_hard",
                          "Github_ultra", "Kubernetes", "Snowplow", "WashingtonPost", "JsonSchemaStore")
GENERATE_ENGINES = ("unconstrained", "corral", "corral-generate", "xgrammar", "llguidance")
SYSTEM_PROMPT = "You need to generate a JSON object that matches the schema below."


def sample_schemas(data_dir: Path, n: int, seed: int = 0, splits=JSONSCHEMABENCH_SPLITS) -> list[dict]:
    """``n`` records, round-robin over the splits, each split shuffled with ``seed``."""
    from bench.maskbench import load_split  # noqa: PLC0415
    pools = []
    for split in splits:
        records = [r for r in load_split(data_dir, split) if r.get("in_jsonschemabench", True)]
        random.Random(f"{seed}-{split}").shuffle(records)
        pools.append(records)
    chosen = []
    while len(chosen) < n and any(pools):
        for pool in pools:
            if pool and len(chosen) < n:
                chosen.append(pool.pop())
    return chosen


def add_arguments(parser) -> None:
    parser.add_argument("--model", default=None, help="local HF checkpoint dir or .gguf (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--engines", nargs="*", default=list(GENERATE_ENGINES))
    parser.add_argument("--num-schemas", type=int, default=100)
    parser.add_argument("--splits", nargs="*", default=list(JSONSCHEMABENCH_SPLITS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--max-prompt-tokens", type=int, default=4096,
                        help="skip schemas whose prompt is longer (listed in config.json, not scored)")
    parser.add_argument("--data-dir", type=Path, default=MASKBENCH_DIR)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared machine more threads thrash)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--quiet", action="store_true")


# --------------------------------------------------------------------------------------- engines
class _TokenClock:
    """A transformers streamer that timestamps every generated token (put() gets the prompt first)."""

    def __init__(self):
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value):
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self):
        pass


def _llguidance_processor_class():
    import torch  # noqa: PLC0415
    import llguidance  # noqa: PLC0415
    import llguidance.torch as llg_torch  # noqa: PLC0415
    from transformers import LogitsProcessor  # noqa: PLC0415

    class LLGuidanceLogitsProcessor(LogitsProcessor):
        """Batch-1 processor: consume the last token, fill the bitmask, mask the scores."""

        def __init__(self, matcher: llguidance.LLMatcher, vocab_size: int):
            self.matcher = matcher
            self.bitmask = llg_torch.allocate_token_bitmask(1, vocab_size)
            self.prompt_len = None

        def __call__(self, input_ids, scores):
            if self.prompt_len is None:
                self.prompt_len = input_ids.shape[1]
            elif not self.matcher.consume_token(int(input_ids[0, -1])):
                raise RuntimeError(f"llguidance: {self.matcher.get_error()}")
            llg_torch.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
            llg_torch.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
            return scores

    return LLGuidanceLogitsProcessor


class _Engines:
    """Per-engine compile + logits-processor factories for one model/tokenizer."""

    def __init__(self, model, tokenizer, stop_ids, log):
        self.model, self.tokenizer, self.stop_ids, self.log = model, tokenizer, stop_ids, log
        self.vocab_width = int(model.config.vocab_size)
        self.setup_s: dict[str, float] = {}

    def prepare(self, engine: str) -> bool:
        started = time.perf_counter()
        try:
            if engine == "unconstrained":
                pass
            elif engine in ("corral", "corral-generate"):
                from bench.adapters import CorralAdapter  # noqa: PLC0415
                CorralAdapter().check_available()
                import importlib  # noqa: PLC0415
                import corral  # noqa: PLC0415
                from corral.decoding import LogitsProcessor, generate  # noqa: PLC0415 - generation helper
                self.corral = corral
                self.corral_generate, self.corral_processor = generate, LogitsProcessor
                helpers = importlib.import_module("corral.decoding.generate")
                self.corral_vocab = helpers.vocabulary_for(self.tokenizer)
                self.corral_generation_options = dict(helpers.DEFAULT_SCHEMA_OPTIONS)
            elif engine == "xgrammar":
                import xgrammar  # noqa: PLC0415
                import xgrammar.contrib.hf  # noqa: PLC0415,F401
                self.xgr = xgrammar
                info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.vocab_width,
                                                               stop_token_ids=self.stop_ids)
                self.xgr_compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_enabled=False)
            elif engine == "llguidance":
                import llguidance  # noqa: PLC0415
                import llguidance.hf  # noqa: PLC0415
                self.llg = llguidance
                self.lltok = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.vocab_width,
                                                          eos_token=self.stop_ids)
                self.llg_processor = _llguidance_processor_class()
            else:
                raise ValueError(f"unknown engine {engine!r}")
            if engine != "unconstrained":  # lazy per-vocabulary work belongs to setup, not to schema 1
                self._warm_up(engine)
        except Exception as exc:  # noqa: BLE001 - a missing engine is skipped with a message
            self.log(f"[bench] skipping {engine}: {type(exc).__name__}: {exc}")
            return False
        self.setup_s[engine] = time.perf_counter() - started
        return True

    def _warm_up(self, engine: str) -> None:
        import torch  # noqa: PLC0415
        compiled = self.compile(engine, {"type": "object", "properties": {"a": {"type": "string"}}})
        scores = torch.zeros((1, self.vocab_width))
        prompt = torch.zeros((1, 1), dtype=torch.long)
        if engine == "xgrammar":
            self.xgr.contrib.hf.LogitsProcessor(compiled)(prompt, scores)
        elif engine == "llguidance":
            self.llg_processor(compiled, self.vocab_width)(prompt, scores)
        else:
            self.corral_processor(compiled, vocab=self.corral_vocab)(prompt, scores)

    def compile(self, engine: str, schema: dict):
        """The engine's compiled form (or None for unconstrained); raises when it declines the schema."""
        text = json.dumps(schema)
        if engine == "unconstrained":
            return None
        if engine == "corral-generate":
            # what `corral generate` and `corral.generate(..., schema)` compile: the generation
            # defaults (json.dumps separators, no undeclared keys unless the schema asks for them,
            # the schema's key order on large objects); every output still validates against the schema
            return self.corral.compile_json_schema(text, self.corral_vocab, **self.corral_generation_options)
        if engine == "corral":
            return self.corral.compile_json_schema(text, self.corral_vocab)
        if engine == "xgrammar":
            return self.xgr_compiler.compile_json_schema(text, any_whitespace=True, strict_mode=False)
        grammar = self.llg.LLMatcher.grammar_from_json_schema(text, defaults={"coerce_one_of": True})
        matcher = self.llg.LLMatcher(self.lltok, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        return matcher

    def generate(self, engine: str, compiled, prompt_ids, max_new_tokens: int) -> dict:
        import torch  # noqa: PLC0415
        if engine == "corral-generate":
            started = time.perf_counter()
            result = self.corral_generate(self.model, self.tokenizer,
                                                   self._prompt_text, compiled, max_new_tokens=max_new_tokens,
                                                   temperature=0.0, system=SYSTEM_PROMPT)
            total = time.perf_counter() - started
            steps = result.steps
            first = (steps[0].forward_s + steps[0].mask_wait_s + steps[0].sample_s) if steps else total
            n = len(result.token_ids)
            return {"text": result.text, "n_tokens": n, "ttft_s": first,
                    "tpot_s": (total - first) / (n - 1) if n > 1 else None,
                    "stop": result.stop_reason, "total_s": total}
        processors = []
        if engine == "corral":
            processors = [self.corral_processor(compiled, vocab=self.corral_vocab)]
        elif engine == "xgrammar":
            processors = [self.xgr.contrib.hf.LogitsProcessor(compiled)]
        elif engine == "llguidance":
            processors = [self.llg_processor(compiled, self.vocab_width)]
        clock = _TokenClock()
        input_ids = torch.tensor([prompt_ids], device=self.model.device)
        started = time.perf_counter()
        with torch.no_grad():
            output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                         max_new_tokens=max_new_tokens, do_sample=False,
                                         logits_processor=processors, eos_token_id=self.stop_ids,
                                         pad_token_id=self.stop_ids[0], streamer=clock)
        total = time.perf_counter() - started
        new = output[0, len(prompt_ids):].tolist()
        stopped = bool(new) and new[-1] in self.stop_ids
        text_ids = new[:-1] if stopped else new
        times = clock.times
        return {"text": self.tokenizer.decode(text_ids, skip_special_tokens=True), "n_tokens": len(new),
                "ttft_s": (times[0] - started) if times else total,
                "tpot_s": (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None,
                "stop": "eos" if stopped else "max_new_tokens", "total_s": total}


def _validate(schema: dict, text: str) -> tuple[bool, str | None]:
    import jsonschema  # noqa: PLC0415
    try:
        value = json.loads(text)
    except ValueError as exc:
        return False, f"not JSON: {exc}"
    try:
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        error = next(iter(validator.iter_errors(value)), None)
    except Exception as exc:  # noqa: BLE001 - a schema jsonschema cannot handle (bad regex, bad $ref)
        return False, f"validator failed: {type(exc).__name__}: {exc}"
    return error is None, None if error is None else error.message[:300]


# --------------------------------------------------------------------------------------- command
def run_generate(args, log=print) -> dict:
    from tqdm import tqdm  # noqa: PLC0415

    from bench import stop_token_ids  # noqa: PLC0415
    try:
        from corral.decoding.models import load_model  # noqa: PLC0415
    except ImportError as exc:
        raise SystemExit(f"generate needs corral.decoding.models.load_model to load the model offline: {exc}")
    out = Path(args.out) if args.out else default_out_dir("generate")
    out.mkdir(parents=True, exist_ok=True)
    started_wall = time.time()
    import torch  # noqa: PLC0415
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model, device=args.device)
    stops = stop_token_ids(tokenizer)
    engines = _Engines(model, tokenizer, stops, log)
    active = [e for e in args.engines if engines.prepare(e)]
    records = sample_schemas(args.data_dir, args.num_schemas, args.seed, args.splits)
    config = {"command": "generate", "argv": sys.argv, "model": args.model or "SmolLM2-135M-Instruct (offline)",
              "engines": active, "skipped_engines": [e for e in args.engines if e not in active],
              "num_schemas": len(records), "max_new_tokens": args.max_new_tokens, "seed": args.seed,
              "system_prompt": SYSTEM_PROMPT, "threads": args.threads, "machine": machine_description(), "setup_s": engines.setup_s}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    skipped: list[dict] = []
    with open(out / "generations.jsonl", "w", encoding="utf-8") as rows_file:
        for record in tqdm(records, desc="generate", unit="schema", disable=args.quiet, dynamic_ncols=True):
            schema = record["schema"]
            user = json.dumps(schema)
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
            engines._prompt_text = user
            prompt_text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) \
                if getattr(tokenizer, "chat_template", None) else f"{SYSTEM_PROMPT}\n{user}\n"
            prompt_ids = tokenizer.encode(prompt_text, add_special_tokens=False)
            if len(prompt_ids) > args.max_prompt_tokens:
                skipped.append({"split": record["split"], "id": record["id"], "prompt_tokens": len(prompt_ids)})
                continue
            for engine in active:
                row = {"engine": engine, "split": record["split"], "id": record["id"], "declared": False,
                       "valid": False, "compile_s": None}
                t0 = time.perf_counter()
                try:
                    compiled = engines.compile(engine, schema)
                    row["compile_s"] = time.perf_counter() - t0
                    row["declared"] = True
                except Exception as exc:  # noqa: BLE001 - declined schema = not covered
                    row["error"] = f"compile: {type(exc).__name__}: {str(exc)[:300]}"
                if row["declared"]:
                    try:
                        row.update(engines.generate(engine, compiled, prompt_ids, args.max_new_tokens))
                        row["valid"], row["invalid_reason"] = _validate(schema, row["text"])
                    except Exception as exc:  # noqa: BLE001
                        row["error"] = f"generate: {type(exc).__name__}: {str(exc)[:300]}"
                        row["stop"] = "error"
                rows_file.write(json.dumps(row) + "\n")
                rows_file.flush()
    config["wall_s"] = time.time() - started_wall
    config["skipped_long_prompts"] = skipped
    (out / "config.json").write_text(json.dumps(config, indent=2))
    summary = write_generate_report([out], out, plots=not args.no_plots)
    log(summary["markdown"])
    log(f"[bench] wall time {config['wall_s']:.1f} s; results in {out}")
    return summary


def write_generate_report(dirs, out: Path, plots: bool = True) -> dict:
    rows, configs, seen = [], {}, set()
    for directory in map(Path, dirs):
        configs[str(directory)] = json.loads((directory / "config.json").read_text())
        for line in (directory / "generations.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                key = (row["engine"], row.get("split"), row.get("id"))
                if key not in seen:  # merged runs may share a schema: count it once (first run wins)
                    seen.add(key)
                    rows.append(row)
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    totals, table = {}, []
    for engine in engines:
        er = [r for r in rows if r["engine"] == engine]
        n = len(er)
        declared = sum(r["declared"] for r in er)
        valid = sum(r["valid"] for r in er)
        compile_ms = percentiles([r["compile_s"] * 1e3 for r in er if r.get("compile_s") is not None], (50, 99))
        ttft_ms = percentiles([r["ttft_s"] * 1e3 for r in er if r.get("ttft_s") is not None], (50,))
        tpot_ms = percentiles([r["tpot_s"] * 1e3 for r in er if r.get("tpot_s") is not None], (50,))
        totals[engine] = {"schemas": n, "declared": declared, "valid": valid,
                          "declared_coverage": declared / n if n else None,
                          "empirical_coverage": valid / n if n else None,
                          "compliance": valid / declared if declared else None,
                          "hit_max_tokens": sum(r.get("stop") == "max_new_tokens" for r in er),
                          "compile_ms": compile_ms, "ttft_ms": ttft_ms, "tpot_ms": tpot_ms}
        t = totals[engine]
        table.append([engine, n, f"{100 * (t['declared_coverage'] or 0):.1f}%",
                      f"{100 * (t['empirical_coverage'] or 0):.1f}%",
                      "–" if t["compliance"] is None else f"{100 * t['compliance']:.1f}%", t["hit_max_tokens"],
                      compile_ms["p50"], compile_ms["p99"], ttft_ms["p50"], tpot_ms["p50"], tpot_ms["mean"]])
    base = totals.get("unconstrained", {}).get("tpot_ms", {}).get("mean")
    markdown = ("**Generation** (greedy; declared = compiled, empirical = output validates with jsonschema "
                "Draft 2020-12 + formats, compliance = empirical/declared; times in ms)\n\n" +
                markdown_table(["engine", "schemas", "declared", "empirical", "compliance", "hit max tokens",
                                "compile p50", "compile p99", "TTFT p50", "TPOT p50", "TPOT mean"], table))
    if base:
        markdown += "\n\nTPOT mean relative to unconstrained: " + ", ".join(
            f"{e} {t['tpot_ms']['mean'] / base:.2f}x" for e, t in totals.items() if t["tpot_ms"]["mean"])
    walls = ", ".join(f"{Path(d).name}: " + (f"{c['wall_s']:.0f} s" if c.get("wall_s") else "unfinished (stopped)")
                      for d, c in configs.items())
    markdown += f"\n\nModel: {next(iter(configs.values())).get('model')}. Wall time: {walls}.\n"
    summary = {"engines": engines, "totals": totals, "markdown": markdown}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown)
    if plots and rows:
        import matplotlib  # noqa: PLC0415
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        fig, ax = plt.subplots(figsize=(7, 4))
        x = range(len(engines))
        ax.bar([i - 0.2 for i in x], [100 * (totals[e]["declared_coverage"] or 0) for e in engines], 0.4,
               label="declared coverage")
        ax.bar([i + 0.2 for i in x], [100 * (totals[e]["empirical_coverage"] or 0) for e in engines], 0.4,
               label="empirical coverage")
        ax.set_xticks(list(x))
        ax.set_xticklabels(engines, rotation=20)
        ax.set_ylabel("% of schemas")
        ax.set_ylim(0, 100)
        ax.legend()
        ax.set_title("JSONSchemaBench-style generation")
        fig.tight_layout()
        fig.savefig(out / "coverage.png", dpi=120)
        plt.close(fig)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary
