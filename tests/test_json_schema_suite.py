"""The official JSON Schema Test Suite against the JSON Schema compiler.

For every test case: compile the schema (remote refs from the suite's ``remotes/``), then every valid
instance serialized three ways (json.dumps default, compact, indent=2) must be accepted, and every
invalid instance must be rejected, unless the compiler raised UnsupportedSchemaError (the keyword
is reported, not silently dropped). Core files run with ``format_assert=False`` (format is an
annotation there); ``optional/format`` runs with format assertion.

CI runs a fixed deterministic sample; ``python tests/test_json_schema_suite.py [--all]`` prints the
per-draft / per-category counts of the whole suite (the acceptance oracle is lark's Earley parser,
or corral's matcher once ``corral.compile_grammar`` exists).
"""
from __future__ import annotations

import collections
import glob
import json
import os
import sys
import time
import zlib

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_json_schema_oracle import LarkOracle  # noqa: E402

from corral.errors import CompileBudgetError, SchemaError, UnsupportedSchemaError  # noqa: E402
from corral.grammars.json_schema import json_schema_to_grammar  # noqa: E402

SUITE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "json-schema-test-suite")
DRAFTS = {"draft4": "http://json-schema.org/draft-04/schema#", "draft6": "http://json-schema.org/draft-06/schema#",
          "draft7": "http://json-schema.org/draft-07/schema#",
          "draft2019-09": "https://json-schema.org/draft/2019-09/schema",
          "draft2020-12": "https://json-schema.org/draft/2020-12/schema"}


def retrieve(uri: str):
    prefix = "http://localhost:1234/"
    if uri.startswith(prefix):
        path = os.path.join(SUITE, "remotes", uri[len(prefix):].split("#")[0])
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return None
    import jsonschema_specifications
    try:
        return jsonschema_specifications.REGISTRY.contents(uri.rstrip("#") if uri.endswith("#") else uri)
    except Exception:
        try:
            return jsonschema_specifications.REGISTRY.contents(uri + "#")
        except Exception:
            return None


def cases(draft: str):
    root = os.path.join(SUITE, "tests", draft)
    for path in sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True)):
        rel = os.path.relpath(path, root)
        with open(path) as f:
            for i, case in enumerate(json.load(f)):
                yield rel, i, case


def serializations(data):
    return [json.dumps(data), json.dumps(data, separators=(",", ":")), json.dumps(data, indent=2)]


def run_case(draft: str, rel: str, case: dict, counts: collections.Counter, failures: list, make_oracle=LarkOracle):
    fmt = rel.startswith("optional") and "format" in rel
    try:
        compiled = json_schema_to_grammar(case["schema"], retrieve=retrieve, format_assert=fmt, exact_leap_seconds=True,
                                          default_dialect=DRAFTS[draft])
    except UnsupportedSchemaError:
        counts["schema_unsupported"] += 1
        counts["tests_skipped_unsupported"] += len(case["tests"])
        return
    except CompileBudgetError:
        counts["schema_budget"] += 1
        counts["tests_skipped_unsupported"] += len(case["tests"])
        return
    except SchemaError as e:
        counts["schema_error"] += 1
        failures.append((draft, rel, case["description"], "SchemaError", str(e)[:200]))
        return
    counts["schema_compiled"] += 1
    # arrays of distinct strings are a Matcher constraint no Lark grammar states, and rule families
    # (nonterminals defined by a function: counted strings under a pattern) have no Lark text:
    # those grammars are run by corral's byte-level Matcher instead (the expected answers are the
    # suite's own)
    g = compiled.grammar
    oracle = _MatcherOracle(g) if g.unique_arrays or g.families else make_oracle(g)
    for t in case["tests"]:
        texts = serializations(t["data"])
        got = [oracle.accepts(s) for s in texts]
        if t["valid"]:
            if all(got):
                counts["valid_accepted"] += 1
            else:
                counts["valid_rejected"] += 1
                failures.append((draft, rel, case["description"], t["description"], "FALSE NEGATIVE", got))
        else:
            if not any(got):
                counts["invalid_rejected"] += 1
            else:
                counts["invalid_accepted"] += 1
                failures.append((draft, rel, case["description"], t["description"], "FALSE POSITIVE", got))


class _MatcherOracle:
    def __init__(self, grammar):
        from corral.masks.matcher import CompiledGrammar
        from corral.masks.tokenizers_offline import load_offline_tokenizer
        from corral.masks.vocab import Vocabulary

        self.compiled = CompiledGrammar(grammar, Vocabulary.from_hf(load_offline_tokenizer("llama3")))

    def accepts(self, text: str) -> bool:
        m = self.compiled.matcher()
        return m.accept_string(text) and m.is_accepting()


def sample(draft: str, every: int):
    for rel, i, case in cases(draft):
        if zlib.crc32(f"{rel}:{i}".encode()) % every == 0:
            yield rel, i, case


@pytest.mark.parametrize("draft", list(DRAFTS))
def test_suite_sample(draft):
    counts: collections.Counter = collections.Counter()
    failures: list = []
    for rel, i, case in sample(draft, every=12):
        run_case(draft, rel, case, counts, failures)
    print(draft, dict(counts))
    assert counts["schema_compiled"] > 0
    assert not [f for f in failures if "FALSE NEGATIVE" in f or f[3] == "SchemaError"], failures
    assert not failures, failures


def main(argv):
    every = 1 if "--all" in argv else 12
    drafts = [a for a in argv if a in DRAFTS] or list(DRAFTS)
    total_fail = []
    for draft in drafts:
        counts: collections.Counter = collections.Counter()
        failures: list = []
        t0 = time.time()
        for rel, i, case in sample(draft, every):
            try:
                run_case(draft, rel, case, counts, failures)
            except Exception as e:  # report, keep going
                counts["crash"] += 1
                failures.append((draft, rel, case["description"], "CRASH", repr(e)[:300]))
        print(f"{draft}: {dict(counts)}  ({time.time() - t0:.1f}s)", flush=True)
        for f in failures:
            print("   ", f)
        total_fail += failures
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
