"""Tests of the evaluation harness (bench/): MaskBench protocol, adapters, crash/timeout isolation.

Oracles: jsonschema (instance labels of the hand-checked cases), the dataset's own labels, and counts
derived from the protocol (masks per instance) recomputed here from the tokenizer's output.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from bench import MASKBENCH_DIR, TEST_SUITE_DIR, load_tokenizer, stop_token_ids
from bench.adapters import (CorralAdapter, EngineAdapter, EngineUnavailable, MaskBuffer, load_adapter,
                            token_bytes_table)
from bench.maskbench import EngineWorker, load_split, run_maskbench, run_schema, tokenize_instances

PEERS = ("xgrammar", "llguidance", "outlines-core")


def _available(engine: str) -> str | None:
    """None when the engine can run here, else the reason it cannot."""
    try:
        load_adapter(engine).check_available()
    except EngineUnavailable as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("llama3")


_ADAPTERS: dict = {}


def set_up_adapter(engine, tokenizer):
    """In-process adapters, set up once per test module (llguidance's tokenizer setup takes seconds)."""
    reason = _available(engine)
    if reason:
        pytest.skip(reason)
    if engine not in _ADAPTERS:
        adapter = load_adapter(engine)
        adapter.setup(tokenizer, stop_token_ids(tokenizer))
        _ADAPTERS[engine] = adapter
    return _ADAPTERS[engine]


# ------------------------------------------------------------------------ a pure-Python test double
class ConstAdapter(EngineAdapter):
    """A tiny engine for ``{"const": X}`` schemas (the language is exactly json.dumps(X)).

    The mask allows the tokens whose bytes continue the remaining text, computed with numpy over the
    token table, and stop tokens once the text is complete. Schemas containing the word "crash" kill the
    process with SIGSEGV; "hang" sleeps forever; "unsupported" is declined: the worker must record
    each as a failure of that schema and go on.
    """

    name = "const-double"

    def setup(self, tokenizer, stop_token_ids):
        super().setup(tokenizer, stop_token_ids)
        self.table = token_bytes_table(tokenizer)

    def compile(self, schema_text):
        if "crash" in schema_text:
            os.kill(os.getpid(), signal.SIGSEGV)
        if "hang" in schema_text:
            time.sleep(3600)
        schema = json.loads(schema_text)
        if "const" not in schema:
            from bench.adapters import Unsupported
            raise Unsupported("only const schemas")
        return json.dumps(schema["const"]).encode()

    def new_matcher(self, compiled):
        return {"target": compiled, "pos": 0}

    def fill_mask(self, matcher, mask: MaskBuffer):
        rest = matcher["target"][matcher["pos"]:]
        allowed = np.zeros(len(mask.words) * 32, dtype=bool)
        for i, data in enumerate(self.table):
            if data and rest.startswith(data):
                allowed[i] = True
        if not rest:
            allowed[self.stop_token_ids] = True
        weights = np.uint64(1) << np.arange(32, dtype=np.uint64)
        words = (allowed.reshape(-1, 32).astype(np.uint64) * weights).sum(axis=1)
        mask.words[:] = words.astype(np.uint32).view(np.int32)

    def accept(self, matcher, token_id):
        data = self.table[token_id] if token_id < len(self.table) else None
        if not data or not matcher["target"][matcher["pos"]:].startswith(data):
            return False
        matcher["pos"] += len(data)
        return True

    def is_accepting(self, matcher):
        return matcher["pos"] == len(matcher["target"])


def test_const_double_mask_layout_matches_accept(tokenizer):
    """The bit layout (bit t%32 of word t//32) the harness reads agrees with the double's accept()."""
    adapter = ConstAdapter()
    adapter.setup(tokenizer, stop_token_ids(tokenizer))
    result = run_schema(adapter, json.dumps({"const": {"k": [1, "two"]}}),
                        tokenize_instances(tokenizer, [{"data": {"k": [1, "two"]}, "valid": True},
                                                       {"data": {"k": [1, "tw"]}, "valid": False}]))
    assert result["status"] == "ok"
    assert [r["ok"] for r in result["instances"]] == [True, True]
    assert all(r["mismatch"] is None for r in result["instances"])


def test_crashing_and_hanging_engine_is_recorded_and_the_run_goes_on(tokenizer):
    worker = EngineWorker(f"{__name__}:ConstAdapter", "llama3", memory_limit_gb=None)
    try:
        good = [(True, tokenizer.encode('"ok"', add_special_tokens=False))]
        outcomes = []
        for schema in ({"const": "ok"}, {"const": "crash"}, {"const": "ok"}, {"const": "hang"},
                       {"type": "unsupported"}, {"const": "ok"}):
            outcomes.append(worker.run(json.dumps(schema), good, compile_timeout=3, mask_timeout=20))
        statuses = [o["status"] for o in outcomes]
        assert statuses == ["ok", "crash", "ok", "timeout", "unsupported", "ok"]
        assert "SIGSEGV" in outcomes[1]["error"]
        assert outcomes[3]["error"].startswith("compile")
        assert worker.restarts == 2
        # After each restart the engine still answers correctly.
        assert all(o["instances"][0]["ok"] for o in outcomes if o["status"] == "ok")
    finally:
        worker.close()


# -------------------------------------------------------------------------- adapters agree (by hand)
HAND_CASES = [
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
      "additionalProperties": False},
     [({"a": 1}, True), ({"a": -20}, True), ({"a": "x"}, False), ({}, False), ({"a": 1, "b": 2}, False),
      ({"a": 1.5}, False)]),
    ({"type": "string", "enum": ["red", "green", "blue"]},
     [("red", True), ("blue", True), ("yellow", False), ("re", False)]),
    ({"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2},
     [([True], True), ([True, False], True), ([], False), ([True, True, True], False), ([1], False)]),
    ({"type": "string", "maxLength": 3}, [("abc", True), ("", True), ("abcd", False)]),
    ({"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array",
                                                                            "items": {"type": "string"}}},
      "required": ["name", "tags"], "additionalProperties": False},
     [({"name": "x y", "tags": ["a", "b"]}, True), ({"name": "x", "tags": []}, True), ({"name": "x"}, False)]),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, [(3, True), (None, True), ("3", False), (3.5, False)]),
]


def test_hand_cases_are_labelled_right():
    for schema, instances in HAND_CASES:
        validator = jsonschema.Draft202012Validator(schema)
        for data, valid in instances:
            assert validator.is_valid(data) == valid, (schema, data)


@pytest.mark.parametrize("engine", ["corral", *PEERS])
def test_adapters_agree_with_jsonschema_on_hand_cases(engine, tokenizer):
    adapter = set_up_adapter(engine, tokenizer)
    for schema, instances in HAND_CASES:
        tests = [{"data": d, "valid": v} for d, v in instances]
        result = run_schema(adapter, json.dumps(schema), tokenize_instances(tokenizer, tests))
        assert result["status"] == "ok", (schema, result["error"])
        verdicts = [r["reject_at"] is None for r in result["instances"]]
        assert verdicts == [v for _, v in instances], (engine, schema)
        assert not any(r["mismatch"] for r in result["instances"]), (engine, schema, result["instances"])


# ---------------------------------------------------------------------- the harness on real data
# Splits whose first two schemas every installed peer compiles (or declines) within seconds.
SPLITS_FOR_CI = ["Glaiveai2K", "JME", "Handwritten"]


def _expected_masks(instances, outcomes) -> int:
    """Masks a fully processed schema records: accept+mask per accepted token, +1 first mask per later
    instance (the very first mask is inside TTFM)."""
    total = 0
    for index, ((_, tokens), outcome) in enumerate(zip(instances, outcomes)):
        at = outcome["reject_at"]
        total += (len(tokens) if at is None or at >= len(tokens) else at) + (1 if index else 0)
    return total


@pytest.mark.skipif(not MASKBENCH_DIR.is_dir(), reason=f"MaskBench data not at {MASKBENCH_DIR}")
def test_maskbench_two_schemas_per_split(tmp_path, tokenizer):
    engines = [e for e in ("corral", *PEERS) if _available(e) is None]
    if not engines:
        pytest.skip("no engine installed")
    args = argparse.Namespace(splits=SPLITS_FOR_CI, limit_per_split=2, skip_per_split=0, engines=engines, tokenizer="llama3",
                              data_dir=MASKBENCH_DIR, out=tmp_path, timeout=20.0, mask_timeout=60.0,
                              memory_limit_gb=8.0, shard=None, no_plots=False, quiet=True)
    summary = run_maskbench(args, log=lambda *_: None)
    rows = [json.loads(line) for line in (tmp_path / "schemas.jsonl").read_text().splitlines()]
    assert len(rows) == len(SPLITS_FOR_CI) * 2 * len(engines)
    records = {(split, r["id"]): r for split in SPLITS_FOR_CI for r in load_split(MASKBENCH_DIR, split, 2)}
    for row in rows:
        record = records[(row["split"], row["id"])]
        assert row["n_valid"] == sum(t["valid"] for t in record["tests"])
        assert row["n_invalid"] == sum(not t["valid"] for t in record["tests"])
        assert row["status"] in ("ok", "unsupported", "compile_error", "timeout", "crash", "runtime_error")
        if row["status"] == "ok":
            assert row["ttfm_s"] >= row["compile_s"] > 0
        assert row["passed"] == (row["status"] == "ok" and row["false_negatives"] == 0
                                 and row["false_positives"] == 0)
    # Per engine, the TBM file holds exactly the masks the rows announce.
    for engine in engines:
        samples = np.fromfile(tmp_path / f"tbm-{engine}.f32", dtype=np.float32)
        assert samples.size == sum(r["n_masks"] for r in rows if r["engine"] == engine)
        assert (samples > 0).all()
        assert summary["totals"][engine]["schemas"] == len(SPLITS_FOR_CI) * 2
    for name in ("summary.md", "results.json", "tbm_cdf.png", "ttfm_cdf.png", "pass_rate_per_split.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| engine | schemas | passed" in summary["markdown"]
    if "corral" not in engines:
        pytest.skip(f"corral part not run: {_available('corral')}")
    corral_rows = [r for r in rows if r["engine"] == "corral"]
    assert sum(r["false_negatives"] for r in corral_rows) == 0, [r for r in corral_rows if r["false_negatives"]]


@pytest.mark.parametrize("engine", PEERS)
def test_mask_count_follows_the_protocol(engine, tokenizer):
    """One schema in-process: the number of TBM samples equals what the protocol implies."""
    record = load_split(MASKBENCH_DIR, "Glaiveai2K", 1)[0]
    adapter = set_up_adapter(engine, tokenizer)
    instances = tokenize_instances(tokenizer, record["tests"])
    result = run_schema(adapter, json.dumps(record["schema"]), instances)
    assert result["status"] == "ok"
    assert result["tbm_us"].size == _expected_masks(instances, result["instances"])
    for (valid, _), outcome in zip(instances, result["instances"]):
        assert outcome["valid"] == valid


def test_corral_adapter_skips_cleanly_or_runs():
    """Either corral's engine is usable, or the adapter says precisely why not (never a crash)."""
    try:
        CorralAdapter().check_available()
    except EngineUnavailable as exc:
        assert str(exc).startswith("corral:")


@pytest.mark.skipif(not TEST_SUITE_DIR.is_dir(), reason="JSON Schema Test Suite not present")
def test_testsuite_loader_reads_categories():
    from bench.testsuite import load_draft
    categories = dict(load_draft(TEST_SUITE_DIR, "draft2020-12"))
    assert {"enum", "ref", "properties"} <= set(categories)
    assert all(isinstance(g["tests"], list) for g in categories["enum"])


def test_report_merges_the_parts_of_one_engine_run(tmp_path):
    """A stopped run and its resumption (or shards) are one engine's rows: all of them, and a
    schema found in two dirs keeps the later dir's row with its own TBM samples."""
    from bench.report import read_maskbench_dirs

    def write(name, rows):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"engines": ["x"]}))
        (d / "schemas.jsonl").write_text("".join(json.dumps({"engine": "x", **r}) + "\n" for r in rows))
        np.concatenate([np.full(r["n_masks"], r["v"], np.float32) for r in rows]).tofile(d / "tbm-x.f32")
        return d

    first = write("a", [{"split": "S", "id": "1", "n_masks": 2, "v": 1.0}, {"split": "S", "id": "2", "n_masks": 1, "v": 2.0}])
    second = write("b", [{"split": "S", "id": "2", "n_masks": 3, "v": 5.0}, {"split": "T", "id": "1", "n_masks": 1, "v": 7.0}])
    rows, tbm, _ = read_maskbench_dirs([first, second])
    assert sorted((r["split"], r["id"], r["v"]) for r in rows) == [("S", "1", 1.0), ("S", "2", 5.0), ("T", "1", 7.0)]
    assert sorted(tbm["x"].tolist()) == [1.0, 1.0, 5.0, 5.0, 5.0, 7.0]


def test_generate_bench_compiles_corral_generate_with_the_generation_defaults(tokenizer):
    """`python -m bench generate`'s corral-generate engine compiles what `corral generate` compiles
    (json.dumps separators, no undeclared keys; the schema's key order on large objects), its `corral`
    engine the full language; every text either accepts is valid for jsonschema."""
    from types import SimpleNamespace

    from bench.generate import _Engines

    model = SimpleNamespace(config=SimpleNamespace(vocab_size=len(tokenizer)))
    engines = _Engines(model, tokenizer, stop_token_ids(tokenizer), log=lambda *_: None)
    assert engines.prepare("corral") and engines.prepare("corral-generate")
    schema = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "string"}}}
    full, generation = engines.compile("corral", schema), engines.compile("corral-generate", schema)

    def accepts(compiled, text):
        m = compiled.matcher()
        return m.accept_string(text) and m.is_accepting()

    cases = {'{"b": 1, "a": "x"}': (True, True), '{"a": "x", "b": 1}': (True, True),
             '{"b": 1, "a": "x", "c": 2}': (True, False), '{\n  "b": 1\n}': (True, False),
             '{"b": 1,"a": "x"}': (True, False), '{"b": "1"}': (False, False)}
    for text, (want_full, want_generation) in cases.items():
        assert (accepts(full, text), accepts(generation, text)) == (want_full, want_generation), text
        valid = jsonschema.Draft202012Validator(schema).is_valid(json.loads(text))
        assert not want_full or valid, text
