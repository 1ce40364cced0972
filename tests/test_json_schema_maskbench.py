"""MaskBench (JSONSchemaBench schemas with LLM-written valid/invalid instances) through corral.

Protocol (shared/data/README.md): json.dumps(instance) with default separators, Llama-3 tokens; for
each token the mask must allow it, then it is accepted; a valid instance must end accepting, an
invalid one must be stopped somewhere. A schema passes when all its instances do. A schema the
compiler refuses (UnsupportedSchemaError / CompileBudgetError) fails, explained.

CI: a fixed small sample of every split, asserting zero valid instances rejected among compiled
schemas. Full run: ``python tests/test_json_schema_maskbench.py [--every N] [--schema-order] [split ...]``
(``--schema-order``: property_order="schema" for objects too large for any-order key tracking).
"""
from __future__ import annotations

import collections
import json
import os
import sys
import time
import zlib

import pytest

import corral
from corral.errors import CompileBudgetError, GrammarError, SchemaError, UnsupportedSchemaError

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "maskbench")


def splits():
    return sorted(f[:-6] for f in os.listdir(DATA) if f.endswith(".jsonl"))


def records(split: str):
    with open(os.path.join(DATA, split + ".jsonl"), encoding="utf-8") as f:
        for line in f.read().split("\n"):  # records may contain U+2028: split on "\n" only
            if line.strip():
                yield json.loads(line)


def instance_ok(compiled, tokenizer, vocab, text: str) -> bool:
    """MaskBench's per-token check: every token allowed by the mask, then accepted; ends accepting."""
    m = compiled.matcher()
    bitmask = corral.allocate_token_bitmask(1, vocab.size)
    for tok in tokenizer.encode(text, add_special_tokens=False):
        m.fill_next_token_bitmask(bitmask, 0)
        word = int(bitmask[0, tok // 32])
        if not (word >> (tok % 32)) & 1:
            return False
        if not m.accept_token(tok):
            return False
    return m.is_accepting()


def run_record(rec, tokenizer, vocab, counts, failures, options=None):
    t0 = time.perf_counter()
    try:
        compiled = corral.compile_json_schema(rec["schema"], vocab, **(options or {}))
    except (UnsupportedSchemaError, CompileBudgetError) as e:
        counts["schema_refused"] += 1
        failures.append((rec["split"], rec["id"], type(e).__name__, str(e)[:300]))
        return None
    except GrammarError as e:
        # the engine refuses grammars with an empty language; only right when no instance is valid
        counts["schema_empty_language"] += 1
        if any(t["valid"] for t in rec["tests"]):
            failures.append((rec["split"], rec["id"], "FALSE NEGATIVE", "empty language: " + str(e)[:200]))
        return None
    except SchemaError as e:
        counts["schema_error"] += 1
        failures.append((rec["split"], rec["id"], "SchemaError", str(e)[:300]))
        return None
    compile_s = time.perf_counter() - t0
    ok_all = True
    for t in rec["tests"]:
        text = json.dumps(t["data"])
        got = instance_ok(compiled, tokenizer, vocab, text)
        if t["valid"] and not got:
            counts["valid_rejected"] += 1
            failures.append((rec["split"], rec["id"], "FALSE NEGATIVE", text[:300]))
            ok_all = False
        elif not t["valid"] and got:
            counts["invalid_accepted"] += 1
            failures.append((rec["split"], rec["id"], "FALSE POSITIVE", text[:300]))
            ok_all = False
        else:
            counts["valid_accepted" if t["valid"] else "invalid_rejected"] += 1
    counts["schema_passed" if ok_all else "schema_failed"] += 1
    return compile_s


def sampled(split: str, every: int):
    for rec in records(split):
        if zlib.crc32(f"{split}:{rec['id']}".encode()) % every == 0:
            yield rec


@pytest.mark.parametrize("split", splits())
def test_maskbench_sample(split, llama3_tokenizer, llama3_vocab):
    counts: collections.Counter = collections.Counter()
    failures: list = []
    for rec in list(sampled(split, every=60))[:4]:
        run_record(rec, llama3_tokenizer, llama3_vocab, counts, failures)
    print(split, dict(counts))
    assert not [f for f in failures if f[2] in ("FALSE NEGATIVE", "SchemaError")], failures


def main(argv):
    from corral.masks.tokenizers_offline import load_offline_tokenizer

    every = 1
    if "--every" in argv:
        every = int(argv[argv.index("--every") + 1])
    chosen = [a for a in argv if a in splits()] or splits()
    options = {"property_order": "schema"} if "--schema-order" in argv else {}
    tok = load_offline_tokenizer("llama3")
    vocab = corral.Vocabulary.from_hf(tok)
    total = collections.Counter()
    all_compile = []
    for split in chosen:
        counts: collections.Counter = collections.Counter()
        failures: list = []
        compile_times = []
        t0 = time.time()
        for rec in sampled(split, every):
            try:
                c = run_record(rec, tok, vocab, counts, failures, options)
            except Exception as e:  # keep going; a crash is a failure
                counts["crash"] += 1
                failures.append((split, rec["id"], "CRASH", repr(e)[:300]))
                c = None
            if c is not None:
                compile_times.append(c)
        n = sum(counts[k] for k in ("schema_passed", "schema_failed", "schema_refused", "schema_error", "crash"))
        pct = 100.0 * counts["schema_passed"] / max(n, 1)
        print(f"{split}: {counts['schema_passed']}/{n} schemas pass ({pct:.1f}%) {dict(counts)} ({time.time() - t0:.0f}s)",
              flush=True)
        for f in failures:
            print("   ", f, flush=True)
        total.update(counts)
        all_compile += compile_times
    n = sum(total[k] for k in ("schema_passed", "schema_failed", "schema_refused", "schema_error", "crash"))
    all_compile.sort()
    if all_compile:
        p = lambda q: all_compile[min(len(all_compile) - 1, int(q * len(all_compile)))] * 1000  # noqa: E731
        print(f"compile ms (front-end + engine, cold per schema): p50 {p(0.5):.1f} p99 {p(0.99):.1f}")
    print(f"TOTAL: {total['schema_passed']}/{n} ({100.0 * total['schema_passed'] / max(n, 1):.1f}%) {dict(total)}")


if __name__ == "__main__":
    main(sys.argv[1:])


PUSH_CHAIN_SAMPLE = [("Github_easy", "o10467"), ("Github_easy", "o12608"), ("Kubernetes", None), ("Github_medium", None),
                     ("JsonSchemaStore", None), ("Glaiveai2K", None)]


def test_push_chains_equal_the_python_worklist_on_maskbench_schemas(llama3_tokenizer, llama3_vocab):
    """JSON Schema grammars (lazily built key-set families, uniqueItems arrays whose parser states
    are rewritten) through the push-chain walk from every mask's first boundary on: masks equal the
    Python worklist's along every instance, valid and invalid, until the instance is rejected."""
    from corral.masks.matcher import CompiledGrammar

    chained = 0
    for split, wanted in PUSH_CHAIN_SAMPLE:
        recs = [r for r in records(split) if wanted is None or r["id"] == wanted][:2 if wanted is None else 1]
        for rec in recs:
            base = corral.compile_json_schema(rec["schema"], llama3_vocab)
            chains, python = CompiledGrammar(base.grammar, llama3_vocab), CompiledGrammar(base.grammar, llama3_vocab)
            chains.push_chain_min_round = 1
            python.use_push_chains = False
            for test in rec["tests"]:
                m_chain, m_python = chains.matcher(), python.matcher()
                for tok in llama3_tokenizer.encode(json.dumps(test["data"]), add_special_tokens=False):
                    assert (m_chain.next_token_bits() == m_python.next_token_bits()).all(), (split, rec["id"])
                    ok = m_chain.accept_token(tok)
                    assert ok == m_python.accept_token(tok)
                    if not ok:
                        break
            chained += chains._n_templates > 0
    assert chained >= 4
