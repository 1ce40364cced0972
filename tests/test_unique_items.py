"""uniqueItems over strings of an open-ended language: the grammar states the array, the Matcher
removes its parses when an item repeats (corral/masks/unique.py).

Oracles: jsonschema for whole documents; for masks, the same schema without uniqueItems (syntax)
plus an independent scan of the completed items (regex + json.loads) for repeats.
"""
from __future__ import annotations

import json
import random
import re

import jsonschema
import numpy as np
import pytest

import corral
from corral.errors import UnsupportedSchemaError

STRINGS = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
SCHEMAS = [
    STRINGS,
    {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "maxItems": 4},
    {"type": "array", "items": {"type": "string", "pattern": "^[a-c]+$"}, "uniqueItems": True, "minItems": 2},
    {"type": "object", "properties": {"tags": STRINGS, "more": STRINGS, "n": {"type": "integer"}},
     "required": ["tags"]},
    # overlapping branches: a repeat only kills the unique branch, the other goes on
    {"anyOf": [STRINGS, {"type": "array", "items": {"type": "string"}, "maxItems": 3}]},
    {"anyOf": [STRINGS, {"type": "array", "items": {"type": "integer"}}]},
    {"type": "array", "items": STRINGS},  # unique arrays nested in a plain array
    {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
    # objects that take any further key; unique arrays nested inside unique arrays' items
    {"type": "array", "uniqueItems": True,
     "items": {"type": "object", "properties": {"a": {"type": "integer"}, "tags": STRINGS}}},
    {"type": "array", "uniqueItems": True, "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
    {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    # any item: a literal's first letters fix it ("t" after true)
    {"type": "array", "uniqueItems": True},
    {"type": "array", "items": {"type": ["string", "boolean", "null", "integer"]}, "uniqueItems": True},
    # a finite set of strings too large for the subset machine (> 8 values)
    {"type": "array", "items": {"enum": ["a", "b", "ab", "c", "a\"", "é", "\\", "x y", "", "q1", "q2"]},
     "uniqueItems": True, "minItems": 1},
    {"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}, "uniqueItems": True},
]


def _instances(rnd: random.Random):
    words = ["a", "b", "ab", "c", "a\"", "é", "\\", "x y", ""]
    out = [[], ["a"], ["a", "a"], ["a", "b"], ["ab", "a", "ab"], [1, 2], [1, 1], {"tags": ["a", "a"]},
           {"tags": ["a", "b"], "more": ["a", "a"]}, {"tags": ["x"], "more": ["x"]}, [["a", "a"]], [["a"], ["a"]],
           ["a", "b", "c", "a"], ["a", "b", "a"], ["a", "b", "c", "d"]]
    for _ in range(40):
        out.append([rnd.choice(words) for _ in range(rnd.randint(0, 5))])
    values = [1, 1.0, 2, -0.5, 0, -0, 0.0, 12, 120, -7, True, False, None, [], [1, "a"], {"a": 1}, {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, {"a": 1.0}, {"tags": ["x"]},
              {"tags": ["x", "x"]}, {"a": True}, {}, "s", [1]]
    for _ in range(40):
        out.append([rnd.choice(values) for _ in range(rnd.randint(0, 4))])
    return out


def _accepts(compiled, tokenizer, text: str) -> bool:
    m = compiled.matcher()
    for t in tokenizer.encode(text, add_special_tokens=False):
        bits = m.next_token_bits()
        if not (int(bits[t >> 5]) >> (t & 31)) & 1:
            assert not m.fork().accept_token(t), "a token outside the mask was accepted"
            return False
        assert m.accept_token(t)
    return m.is_accepting()


@pytest.mark.parametrize("schema", SCHEMAS)
def test_documents_match_jsonschema(schema, llama3_vocab, llama3_tokenizer):
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    assert compiled.grammar.unique_arrays
    validator = jsonschema.Draft202012Validator(schema)
    for inst in _instances(random.Random(7)):
        want = validator.is_valid(inst)
        for text in (json.dumps(inst), json.dumps(inst, ensure_ascii=False, separators=(",", ":")),
                     json.dumps(inst, indent=2)):
            assert _accepts(compiled, llama3_tokenizer, text) == want, (schema, text)


def test_escaped_spellings_are_the_same_item(llama3_vocab, llama3_tokenizer):
    compiled = corral.compile_json_schema(STRINGS, llama3_vocab)
    assert not _accepts(compiled, llama3_tokenizer, '["a", "\\u0061"]')
    assert not _accepts(compiled, llama3_tokenizer, '["é/", "\\u00e9\\/"]')
    assert _accepts(compiled, llama3_tokenizer, '["a", "\\u0062"]')


_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _oracle_bits(plain_bits: np.ndarray, prefix: bytes, vocab) -> np.ndarray:
    """Plain-grammar mask minus the quote tokens after which two completed items are equal (for a
    single array of strings, the prefix being inside it)."""
    out = plain_bits.copy()
    for tok in range(vocab.size):
        data = vocab.token_bytes(tok)
        if b'"' not in data or not (int(out[tok >> 5]) >> (tok & 31)) & 1:
            continue
        items = [json.loads(m.group()) for m in _STRING_RE.finditer(prefix + data)]
        if len(set(items)) != len(items):
            out[tok >> 5] &= ~np.uint32(1 << (tok & 31))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_masks_equal_the_brute_force_oracle(seed, llama3_vocab, llama3_tokenizer):
    rnd = random.Random(seed)
    compiled = corral.compile_json_schema(STRINGS, llama3_vocab)
    plain = corral.compile_json_schema({"type": "array", "items": {"type": "string"}}, llama3_vocab)
    words = ["alpha", "beta", "al", "a b", "x\"y"]
    items = [rnd.choice(words) for _ in range(4)]
    text = json.dumps(items).encode()
    ids = llama3_tokenizer.encode(text.decode(), add_special_tokens=False)
    m, p = compiled.matcher(), plain.matcher()
    prefix = b""
    for t in ids:
        got = m.next_token_bits()
        want = _oracle_bits(p.next_token_bits(), prefix, llama3_vocab)
        assert np.array_equal(got, want), prefix
        if not (int(got[t >> 5]) >> (t & 31)) & 1:
            break  # the document repeats an item here: the oracle agreed it is not allowed
        assert m.accept_token(t) and p.accept_token(t)
        prefix += llama3_vocab.token_bytes(t)


def _completed_items(text: str) -> list:
    """The items of a top-level array prefix that are complete (Python's JSON decoder; a number
    counts once a delimiter follows it)."""
    dec = json.JSONDecoder()
    i, items = text.index("[") + 1, []
    while True:
        while i < len(text) and text[i] in " \t\n\r,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return items
        try:
            v, end = dec.raw_decode(text, i)
        except ValueError:
            return items
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (end >= len(text) or text[end] not in " \t\n\r,]"):
            return items  # "1.5e" decodes as 1.5 but is not complete
        items.append(v)
        i = end


@pytest.mark.parametrize("doc", [[{"a": 1, "b": 2.0}, {"b": 2, "a": 1}], [1.5, 2, 1.50]])
def test_object_and_number_masks_equal_the_decoder_oracle(doc, llama3_vocab, llama3_tokenizer):
    """At every position: the mask equals the mask without uniqueItems minus the tokens after which
    two completed items are equal (jsonschema's own uniqueItems check on Python's decoding)."""
    schema = {"type": "array", "uniqueItems": True, "items": {"anyOf": [{"type": "number"}, {"type": "object"}]}}
    plain_schema = {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "object"}]}}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    plain = corral.compile_json_schema(plain_schema, llama3_vocab)
    unique = jsonschema.Draft202012Validator({"uniqueItems": True})
    # an item can only complete at a quote, a bracket or a delimiter: other tokens need no check
    closing = np.array([any(c in llama3_vocab.token_bytes(t) for c in b'"}],\t\n\r ')
                        for t in range(llama3_vocab.size)])
    m, p = compiled.matcher(), plain.matcher()
    prefix = ""
    for t in llama3_tokenizer.encode(json.dumps(doc), add_special_tokens=False):
        got, want = m.next_token_bits(), p.next_token_bits().copy()
        allowed = np.unpackbits(want.view(np.uint8), bitorder="little")[:llama3_vocab.size].astype(bool)
        for tok in np.flatnonzero(allowed & closing).tolist():
            text = prefix + llama3_vocab.token_bytes(tok).decode("utf-8", "replace")
            if not unique.is_valid(_completed_items(text)):
                want[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        assert np.array_equal(got, want), prefix
        if not (int(got[t >> 5]) >> (t & 31)) & 1:
            break
        assert m.accept_token(t) and p.accept_token(t)
        prefix += llama3_vocab.token_bytes(t).decode("utf-8")


def test_random_walks_end_in_valid_documents(llama3_vocab):
    schema = {"type": "array", "items": {"type": "string", "pattern": "^[ab]+$"}, "uniqueItems": True,
              "minItems": 3, "maxItems": 6}
    compiled = corral.compile_json_schema(schema, llama3_vocab, whitespace="compact")
    validator = jsonschema.Draft202012Validator(schema)
    eos = set(llama3_vocab.eos_token_ids)
    rnd = random.Random(3)
    for _ in range(15):
        m = compiled.matcher()
        text = b""
        for _ in range(80):
            ids = m.allowed_token_ids()
            assert len(ids), "dead end"
            tok = int(rnd.choice(ids))
            if tok in eos:
                break
            # short tokens first, so items repeat often
            if len(llama3_vocab.token_bytes(tok)) > 2 and rnd.random() < 0.7:
                continue
            assert m.accept_token(tok)
            text += llama3_vocab.token_bytes(tok)
        if m.is_accepting():
            assert validator.is_valid(json.loads(text)), text


def test_rollback_and_fork_keep_the_items(llama3_vocab, llama3_tokenizer):
    compiled = corral.compile_json_schema(STRINGS, llama3_vocab)
    m = compiled.matcher()
    for t in llama3_tokenizer.encode('["a", "b", ', add_special_tokens=False):
        assert m.accept_token(t)
    before = m.next_token_bits().copy()
    child = m.fork()
    for t in llama3_tokenizer.encode('"c", ', add_special_tokens=False):
        assert child.accept_token(t)
    assert np.array_equal(m.next_token_bits(), before)
    n = len(llama3_tokenizer.encode('"c", ', add_special_tokens=False))
    child.rollback(n)
    assert np.array_equal(child.next_token_bits(), before)
    assert not child.accept_string('"a"') and child.accept_string('"c"')


_SUFFIXES = ["", "]", "0]", "5]", "7]", "13]", ".0]", "e5]", "+5]", " 7]", ", 7]", "7, 13]", "0.0]"] + [
    head + ", 7, 13]" for head in ("", "0", "5", ".0", "e5", "+5", "7")] + [
    head + tail for head in ("", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", ".0", "-1", "-2", " -1", " -2")
    for tail in ("]", ", 0]", ", 1]", ", -2]", ", 3]", ", 4]", ", 5]", ", 6]", ", -1, 1]", ", 7, 8]", ", 4, 5, 6]")]


@pytest.mark.parametrize("schema,doc", [
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, [0, 10, 1, -3, 12]),
    ({"type": "array", "items": {"type": "integer", "minimum": 0}, "uniqueItems": True, "minItems": 2}, [1, 0, 100]),
    # bounded: after 1, 10, 11 and 12 the prefix "1" has no unused completion left
    ({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 12}, "uniqueItems": True},
     [12, 10, 11, 1, 2, 9]),
    ({"type": "array", "items": {"type": "integer", "minimum": -3, "exclusiveMaximum": 2}, "uniqueItems": True,
      "minItems": 2}, [-3, 0, 1, -1, -2]),
])
def test_integer_masks_equal_the_completion_oracle(schema, doc, llama3_vocab, llama3_tokenizer):
    """Integer items: "0", "-0" and "12." already fix the value, so after 0 (or 12) was used those
    prefixes must be masked too. Oracle: the token is allowed by the grammar without uniqueItems
    and some completion from a fixed list makes a document jsonschema accepts."""
    plain_schema = {k: v for k, v in schema.items() if k != "uniqueItems"}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    assert compiled.grammar.unique_integer_items
    plain = corral.compile_json_schema(plain_schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)

    def completes(text: str) -> bool:
        for suffix in _SUFFIXES:
            try:
                if validator.is_valid(json.loads(text + suffix)):
                    return True
            except ValueError:
                continue
        return False

    m, p = compiled.matcher(), plain.matcher()
    prefix = ""
    for t in llama3_tokenizer.encode(json.dumps(doc), add_special_tokens=False):
        got, want = m.next_token_bits(), p.next_token_bits().copy()
        allowed = np.unpackbits(want.view(np.uint8), bitorder="little")[:llama3_vocab.size].astype(bool)
        for tok in np.flatnonzero(allowed).tolist():
            data = llama3_vocab.token_bytes(tok)
            if tok in llama3_vocab.eos_token_ids or not data:
                continue
            if not completes(prefix + data.decode("utf-8", "replace")):
                want[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        assert np.array_equal(got, want), (prefix, np.flatnonzero(np.unpackbits(
            (got ^ want).view(np.uint8), bitorder="little"))[:10])
        assert (int(got[t >> 5]) >> (t & 31)) & 1
        assert m.accept_token(t) and p.accept_token(t)
        prefix += llama3_vocab.token_bytes(t).decode("utf-8")


CLOSED_ITEMS = [
    {"type": "string", "maxLength": 3}, {"type": "string", "format": "date"},
    {"type": "array", "maxItems": 2}, {"type": "integer", "multipleOf": 3},
    {"anyOf": [{"type": "integer", "maximum": 5}, {"type": "integer", "minimum": 10}]},
    {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}},
    {"type": "object", "additionalProperties": False, "required": ["k"],
     "properties": {"k": {"enum": ["a", "b"]}, "f": {"type": "boolean"}}},
    {"anyOf": [{"type": "string", "pattern": "^[ab]{1,2}$"},
               {"type": "object", "additionalProperties": False, "properties": {"n": {"type": "integer"}}}]},
]


def _closed_instances(rnd: random.Random) -> list:
    values = ["", "a", "b", "ab", "abc", "2020-01-01", "2020-01-02", 3, 6, 7, 0, 12, 1, -3, [], [1], [1, 2], [2, 1],
              {}, {"a": "x"}, {"a": "y"}, {"k": "a"}, {"k": "b"}, {"k": "a", "f": True}, {"f": True, "k": "a"},
              {"k": "a", "f": False}, {"n": 1}, {"n": 2}, "ba", "bb", "aa"]
    return [[rnd.choice(values) for _ in range(rnd.randint(0, 5))] for _ in range(120)]


@pytest.mark.parametrize("items", CLOSED_ITEMS)
def test_closed_item_languages_match_jsonschema(items, llama3_vocab, llama3_tokenizer):
    """Item languages where a prefix may have only used values left to complete it ("ab" of
    maxLength 2, '{"k": "a", "f": true' of a closed object): the Matcher searches the prefix's
    completions for an unused value (Grammar.unique_searched). Oracle: jsonschema on documents."""
    schema = {"type": "array", "items": items, "uniqueItems": True}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    assert compiled.grammar.unique_searched
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for inst in _closed_instances(random.Random(11)):
        want = validator.is_valid(inst)
        for text in (json.dumps(inst), json.dumps(inst, separators=(",", ":"))):
            assert _accepts(compiled, llama3_tokenizer, text) == want, (items, text)


@pytest.mark.parametrize("items", CLOSED_ITEMS[3:])
def test_random_walks_over_closed_items_never_dead_end(items, llama3_vocab):
    """Masks are not too loose: every allowed token keeps a completion, so walks never meet an
    empty mask, and every document they finish is valid."""
    schema = {"type": "array", "items": items, "uniqueItems": True, "maxItems": 8}
    compiled = corral.compile_json_schema(schema, llama3_vocab, whitespace="compact")
    validator = jsonschema.Draft202012Validator(schema)
    eos = set(llama3_vocab.eos_token_ids)
    rnd = random.Random(5)
    for _ in range(8):
        m = compiled.matcher()
        text = b""
        for _ in range(60):
            ids = m.allowed_token_ids()
            assert len(ids), ("dead end", text)
            tok = int(rnd.choice(ids))
            if tok in eos:
                break
            if len(llama3_vocab.token_bytes(tok)) > 2 and rnd.random() < 0.8:
                continue  # short tokens first, so items repeat often
            assert m.accept_token(tok)
            text += llama3_vocab.token_bytes(tok)
        if m.is_accepting():
            assert validator.is_valid(json.loads(text)), text


def _small_vocab(llama3_vocab):
    """Llama-3's first 3,000 tokens plus every token with a quote, comma or bracket: small enough
    to step every token through the parser."""
    from corral.masks.vocab import Vocabulary

    keep = [t for t in range(llama3_vocab.size) if t < 3000 or any(c in llama3_vocab.token_bytes(t) for c in b'",[]{}')]
    return Vocabulary([llama3_vocab.token_bytes(t) for t in keep], eos_token_ids=[keep.index(t) for t in
                      llama3_vocab.eos_token_ids if t in keep] or [])


@pytest.mark.parametrize("items,doc", [
    ({"type": "string", "pattern": "^(ab|abc|b|ba|c)$"}, ["ab", "b", "ba", "abc", "c"]),
    (CLOSED_ITEMS[6], [{"k": "a", "f": True}, {"k": "b"}, {"f": True, "k": "b"}, {"k": "a"}]),
    (CLOSED_ITEMS[3], [3, 30, 6, -3, 0]),
])
def test_searched_filter_equals_stepping_every_token(items, doc, llama3_vocab, llama3_tokenizer):
    """The filter steps only candidates (tokens the trie walk finds spelled as used values, and
    restarts after a comma); stepping every token the grammar allows gives the same mask."""
    from corral.automata.earley import DEAD

    vocab = _small_vocab(llama3_vocab)
    schema = {"type": "array", "items": items, "uniqueItems": True}
    compiled = corral.compile_json_schema(schema, vocab)
    plain = corral.compile_json_schema({"type": "array", "items": items}, vocab)
    unique = compiled._unique
    m, p = compiled.matcher(), plain.matcher()
    text = json.dumps(doc).encode()
    pos = 0
    while pos < len(text):
        got, base = m.next_token_bits(), p.next_token_bits()
        want = base.copy()
        sid, frames = m._history[-1], m._frames[-1]
        for tok in np.flatnonzero(np.unpackbits(base.view(np.uint8), bitorder="little")[:vocab.size]).tolist():
            data = vocab.token_bytes(tok)
            if data and unique.advance(sid, frames, data)[0] == DEAD:
                want[tok >> 5] &= ~np.uint32(1 << (tok & 31))
        assert np.array_equal(got, want), (text[:pos], [vocab.token_bytes(int(x)) for x in np.flatnonzero(
            np.unpackbits((got ^ want).view(np.uint8), bitorder="little"))[:8]])
        # the longest token that spells the document on
        node, best = 0, None
        trie = vocab.trie
        for k in range(pos, len(text)):
            node = trie.find(text[pos:k + 1])
            if node < 0:
                break
            ids = trie.tokens_at(node)
            if len(ids):
                best = int(ids[0])
        assert best is not None and m.accept_token(best) and p.accept_token(best)
        pos += len(vocab.token_bytes(best))


def test_the_draft7_meta_schema_validates_schemas(llama3_vocab):
    """A real schema with unique string arrays (`required`, `type` lists, `enum` is plain): the
    draft-07 meta-schema, fetched offline from jsonschema's bundled copies."""
    meta = {"$ref": "http://json-schema.org/draft-07/schema#"}
    compiled = corral.compile_json_schema(meta, llama3_vocab, format_assert=False)
    validator = jsonschema.Draft7Validator(jsonschema.Draft7Validator.META_SCHEMA)
    docs = [{"type": "object", "required": ["a", "b"]}, {"required": ["a", "a"]}, {"type": ["string", "null"]},
            {"type": ["string", "string"]}, {"type": 1}, {"minLength": -1}, {"properties": {"x": {"enum": [1, 1]}}},
            {"items": [{"type": "integer"}, {"required": ["k", "k"]}]}, {"dependencies": {"a": ["b", "b"]}}, True]
    for doc in docs:
        m = compiled.matcher()
        got = m.accept_string(json.dumps(doc)) and m.is_accepting()
        assert got == validator.is_valid(doc), doc


DOMAIN = ["ab", "abc", "b", "ba", "c", "é"]


def _domain_completions(minimum: int) -> list[str]:
    tails = ["", "]"] + [f", {json.dumps(w)}]" for w in DOMAIN] + [
        f", {json.dumps(w)}, {json.dumps(x)}]" for w in DOMAIN for x in DOMAIN if w < x]
    out = list(tails)
    for u in DOMAIN:
        for tail in tails:
            out.append(json.dumps(u, ensure_ascii=False) + tail)
            out.extend(u[k:] + '"' + tail for k in range(len(u) + 1))
    return out


@pytest.mark.parametrize("minimum,path", [(0, "domain"), (3, "domain"), (0, "searched"), (2, "searched")])
def test_string_domain_masks_equal_the_completion_oracle(minimum, path, llama3_vocab, llama3_tokenizer):
    """Items from a finite set of strings (beyond the small-domain subset machine when the enum is
    large; forced here through the domain path): a prefix only fitting used values, a comma with
    no unused value left, or too few values left for minItems are dead. Oracle: the grammar without
    uniqueItems allows the token and some completion from a list makes a valid document
    (tokens with a backslash are left to the document test below). The "searched" path states
    the same set as a pattern, so the Matcher's completion search decides instead."""
    from corral.grammars.json_schema import compiler as jsc

    items = {"enum": DOMAIN} if path == "domain" else \
        {"type": "string", "pattern": "^(" + "|".join(re.escape(w) for w in DOMAIN) + ")$"}
    schema = {"type": "array", "items": items, "uniqueItems": True, "minItems": minimum}
    plain_schema = {"type": "array", "items": items, "minItems": minimum}
    old = jsc.Compiler._unique_finite_array
    jsc.Compiler._unique_finite_array = lambda *a, **k: False  # take the string-domain path
    try:
        compiled = corral.compile_json_schema(schema, llama3_vocab)
    finally:
        jsc.Compiler._unique_finite_array = old
    assert compiled.grammar.unique_string_domains if path == "domain" else compiled.grammar.unique_searched
    plain = corral.compile_json_schema(plain_schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)
    completions = _domain_completions(minimum)

    def completes(text: str) -> bool:
        for suffix in completions:
            try:
                if validator.is_valid(json.loads(text + suffix)):
                    return True
            except ValueError:
                continue
        return False

    for doc in (["ab", "b", "ba", "abc", "c"], ["é", "c", "b"]):
        m, p = compiled.matcher(), plain.matcher()
        prefix = ""
        for t in llama3_tokenizer.encode(json.dumps(doc, ensure_ascii=False), add_special_tokens=False):
            got, want = m.next_token_bits(), p.next_token_bits().copy()
            allowed = np.unpackbits(want.view(np.uint8), bitorder="little")[:llama3_vocab.size].astype(bool)
            for tok in np.flatnonzero(allowed).tolist():
                data = llama3_vocab.token_bytes(tok)
                if tok in llama3_vocab.eos_token_ids or not data or b"\\" in data:
                    continue
                try:
                    text = (prefix.encode() + data).decode("utf-8")
                except UnicodeDecodeError:
                    continue  # ends inside a character: checked through the documents
                if not completes(text):
                    want[tok >> 5] &= ~np.uint32(1 << (tok & 31))
            mismatch = np.flatnonzero(np.unpackbits((got ^ want).view(np.uint8), bitorder="little"))
            mismatch = [int(x) for x in mismatch if x < llama3_vocab.size and b"\\" not in llama3_vocab.token_bytes(int(x))]
            utf8_partial = [x for x in mismatch if not _decodes(prefix.encode() + llama3_vocab.token_bytes(x))]
            assert sorted(set(mismatch) - set(utf8_partial)) == [], (prefix, [llama3_vocab.token_bytes(x) for x in mismatch])
            if not (int(got[t >> 5]) >> (t & 31)) & 1:
                break
            assert m.accept_token(t) and p.accept_token(t)
            prefix += llama3_vocab.token_bytes(t).decode("utf-8")
        # documents, escaped spellings included
        for text, ok in (('["ab", "a\\u0062"]', False), ('["\\u00e9", "é"]', False), ('["\\u00e9", "ab", "c"]', True),
                         ('["b", "ba", "c"]', True), ('["b", "ba"]', minimum < 3), ('["ab", "abc", "b", "ba", "c", "é"]', True)):
            m = compiled.matcher()
            assert (m.accept_string(text) and m.is_accepting()) == ok, text


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_literal_prefixes_of_any_items_are_checked_as_read(llama3_vocab):
    """After true was an item, "t" can only become true again: masked at once, and so is "n"
    after null; "tr" inside a string item stays allowed."""
    compiled = corral.compile_json_schema({"type": "array", "uniqueItems": True}, llama3_vocab)
    for prefix, token_text, ok in (("[true, ", "t", False), ("[true, ", "f", True), ("[null,", "n", False),
                                   ("[true, ", '"', True), ("[1, ", "1", True), ("[[1], ", "[", True),
                                   ("[true, false, null, ", "f", False), ('["t', "r", True)):
        m = compiled.matcher()
        assert m.accept_string(prefix)
        tok = next(t for t in range(llama3_vocab.size) if llama3_vocab.token_bytes(t) == token_text.encode())
        bits = m.next_token_bits()
        assert bool((int(bits[tok >> 5]) >> (tok & 31)) & 1) == ok, (prefix, token_text)
        assert m.fork().accept_token(tok) == ok


@pytest.mark.parametrize("minimum", [0, 2])
def test_string_domain_fast_filter_equals_stepping_every_token(minimum, llama3_vocab, monkeypatch):
    """The string-domain filter decides tokens from the decoded text they leave the item with; the
    general path steps each candidate through the parser. Equal masks along random walks, and equal
    to the same filter deciding every allowed token instead of the used values' candidates."""
    from corral.masks import unique

    values = [f"feature/{w}" for w in ("a", "ab", "b", "ba", "css", "cssgrid", "x\u00e9", 'q"uote')] + ["é", "z"]
    schema = {"type": "array", "items": {"enum": values}, "uniqueItems": True, "minItems": minimum}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    assert compiled.grammar.unique_string_domains
    fast = unique.UniqueArrays._filter_string_domain
    calls = [0]

    def both(self, bits, sid, frame):
        got = fast(self, bits, sid, frame)
        if got is not None:
            calls[0] += 1
            # the candidates looked up from the used values decide what deciding every token does
            assert np.array_equal(got, fast(self, bits, sid, frame, exhaustive=True)), frame
            monkeypatch.setattr(unique.UniqueArrays, "_filter_string_domain", lambda *a: None)
            want = self.filter_mask(bits, sid, (frame,))
            monkeypatch.setattr(unique.UniqueArrays, "_filter_string_domain", both)
            assert np.array_equal(got, want), frame
        return got

    monkeypatch.setattr(unique.UniqueArrays, "_filter_string_domain", both)
    rnd = random.Random(minimum)
    for _ in range(6):
        m = compiled.matcher()
        for _ in range(60):
            ids = m.allowed_token_ids()
            if not len(ids) or m.is_terminated():
                break
            m.accept_token(int(rnd.choice(ids.tolist())))
    assert calls[0] > 20


def _spellings(v, rnd: random.Random) -> list[bytes]:
    """JSON spellings of ``v``: json.dumps variants, shuffled key orders, \\u escapes."""
    out = []
    for _ in range(6):
        def shuffled(x):
            if isinstance(x, dict):
                keys = list(x)
                rnd.shuffle(keys)
                return {k: shuffled(x[k]) for k in keys}
            if isinstance(x, list):
                return [shuffled(e) for e in x]
            return x
        w = shuffled(v)
        out.append(json.dumps(w).encode())
        out.append(json.dumps(w, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        out.append(json.dumps(w, indent=rnd.choice([1, 2, 4])).encode())
    return out


def test_spelled_as_accepts_every_prefix_of_every_spelling_and_resumes_alike():
    """The search's pruning: a prefix of any spelling of a used value must count as spelled as it
    (a wrong "no" would let a repeat through as a new value), and resuming from a checkpoint
    answers like reading from the start."""
    from corral.masks import unique

    rnd = random.Random(1)
    values = ["", "a\"b", "é\\", "x" * 40, 0, 12, -3.5, 1e21, True, None, [], [1, "a", [2]], {},
              {"a": 1, "b": "x", "c": [True, {"d": None}]}, {"k": "é", "k2": {"z": []}}]
    for v in values:
        canon = unique._canonical(json.loads(json.dumps(v), parse_float=unique.Decimal, parse_int=unique.Decimal))
        others = [w for w in values if w != v or type(w) is not type(v)]
        for text in _spellings(v, rnd):
            for k in range(1, len(text) + 1):
                prefix = text[:k]
                assert unique._spelled_as(canon, prefix), (v, prefix)
                cut = rnd.randint(0, k)
                assert unique._spelled_as(canon, prefix, unique._checkpoint(canon, text[:cut])[1]), (v, prefix, cut)
        # a complete spelling of a different value is not spelled as this one (a space after it
        # ends a number: "1" alone may still become "10")
        for w in others:
            text = json.dumps(w).encode() + b" "
            if json.loads(text) != v:
                assert not unique._spelled_as(canon, text), (v, w)


def test_a_repeat_forced_deep_inside_an_item_is_caught_there(llama3_vocab):
    """Closed recursive items: in a second item spelled like the first down to its innermost '{',
    a '}' leaves only closing braces to follow (every outer key is used), so the repeat is certain
    300 levels before the item closes, and the array's parses go there (``ParserStates.without``
    settles the 300 origin states with a worklist)."""
    node = {"type": "object", "additionalProperties": False,
            "properties": {"a": {"$ref": "#/$defs/node"}, "k": {"type": "boolean"}}}
    schema = {"$defs": {"node": node}, "type": "array", "uniqueItems": True, "items": {"$ref": "#/$defs/node"}}
    compiled = corral.compile_json_schema(schema, llama3_vocab, whitespace="compact")
    depth = 300
    opening = '{"k":true,"a":' * depth
    m = compiled.matcher()
    assert m.accept_string("[" + opening + "{}" + "}" * depth + "," + opening + "{")
    assert not m.fork().accept_string("}")  # nothing but the used item could follow
    assert m.accept_string('"k":false}' + "}" * depth + "]") and m.is_accepting()
