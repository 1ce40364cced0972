"""Property tests on sampled MaskBench schemas, through corral's matcher (Llama-3 vocabulary).

1. Completeness: instances that ``hypothesis-jsonschema`` generates for a schema (valid by
   construction) are accepted in all three serializations.
2. Soundness: random walks over the tokens the mask allows, stopped once accepting, end in
   documents that ``jsonschema`` validates.
"""
from __future__ import annotations

import json
import os
import random
import sys
import zlib

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, os.path.dirname(__file__))
import test_json_schema_maskbench as mb  # noqa: E402

import corral  # noqa: E402
from corral.errors import CorralError  # noqa: E402


def sample_schemas(n: int, salt: str):
    out = []
    for split in mb.splits():
        for rec in mb.records(split):
            if zlib.crc32(f"{salt}:{split}:{rec['id']}".encode()) % 400 == 0:
                out.append(rec)
    random.Random(salt).shuffle(out)
    return out[:n]


def compile_or_skip(schema, vocab):
    try:
        return corral.compile_json_schema(schema, vocab)
    except CorralError:
        return None


def validator_for(schema):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def accepts(compiled, text: str) -> bool:
    m = compiled.matcher()
    return m.accept_string(text) and m.is_accepting()


@pytest.mark.parametrize("rec", sample_schemas(3, "hyp"), ids=lambda r: f"{r['split']}/{r['id']}")
def test_hypothesis_jsonschema_instances_are_accepted(rec, llama3_vocab):
    from hypothesis_jsonschema import from_schema

    compiled = compile_or_skip(rec["schema"], llama3_vocab)
    if compiled is None:
        pytest.skip("schema refused by the compiler (UnsupportedSchemaError/CompileBudgetError)")
    try:
        strategy = from_schema(rec["schema"])
    except Exception as e:  # hypothesis-jsonschema cannot handle every schema
        pytest.skip(f"hypothesis-jsonschema: {type(e).__name__}")
    validator = validator_for(rec["schema"])

    @settings(max_examples=8, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(instance):
        if not validator.is_valid(instance):  # formats: hypothesis-jsonschema may not assert them
            return
        for text in (json.dumps(instance), json.dumps(instance, separators=(",", ":")), json.dumps(instance, indent=2)):
            assert accepts(compiled, text), text

    try:
        check()
    except Exception as e:
        if "Unsatisfiable" in type(e).__name__ or "FailedHealthCheck" in type(e).__name__:
            pytest.skip(type(e).__name__)
        raise


@pytest.mark.parametrize("rec", sample_schemas(2, "walk"), ids=lambda r: f"{r['split']}/{r['id']}")
def test_random_walks_produce_valid_documents(rec, llama3_vocab, llama3_tokenizer):
    compiled = compile_or_skip(rec["schema"], llama3_vocab)
    if compiled is None:
        pytest.skip("schema refused by the compiler")
    validator = validator_for(rec["schema"])
    rng = random.Random(rec["id"])
    bitmask = corral.allocate_token_bitmask(1, llama3_vocab.size)
    done = 0
    for _ in range(4):
        m = compiled.matcher()
        text = b""
        for _step in range(80):
            if m.is_accepting() and rng.random() < 0.25:
                break
            m.fill_next_token_bitmask(bitmask, 0)
            words = bitmask[0].numpy().astype("uint32")
            allowed = [w * 32 + b for w in words.nonzero()[0] for b in range(32) if (int(words[w]) >> b) & 1]
            allowed = [t for t in allowed if t < llama3_vocab.size and t not in llama3_vocab.eos_token_ids]
            if not allowed:
                break
            tok = rng.choice(allowed)
            assert m.accept_token(tok)
            text += llama3_vocab.token_bytes(tok)
        if not m.is_accepting():
            continue  # the walk ran out of steps mid-document: nothing to check
        doc = json.loads(text.decode("utf-8"))
        assert validator.is_valid(doc), (text, list(validator.iter_errors(doc))[:1])
        done += 1
    print(rec["split"], rec["id"], "complete walks:", done)
