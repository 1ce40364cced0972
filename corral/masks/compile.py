"""Compile entry points: front-end -> Grammar IR -> CompiledGrammar, cached per vocabulary.

One compiled grammar per (grammar, vocabulary): results are memoized in ``vocab.cache`` keyed by
the grammar's source (pattern, Lark text, canonical schema JSON + options) or IR fingerprint.
"""
from __future__ import annotations

import json
import threading

from corral.errors import GrammarError
from corral.gc_untrack import gc_paused
from corral.grammars.ir import Grammar
from corral.masks.matcher import CompiledGrammar

_COMPILE_CACHE_SIZE = 128
# Compiled grammars grow as they are used (memoized masks: 16 KB each on a 128k vocabulary, the
# packed DFA table, parser states), so the cache is bounded by their estimated size too: a long
# MaskBench run kept 128 large grammars and reached the worker's 8 GB limit.
_COMPILE_CACHE_BYTES = 1 << 30
_BYTES_CHECK_EVERY = 8
_lock = threading.Lock()


def _cached(vocab, key, build):
    cache = vocab.cache.setdefault("corral.compiled", {})
    hit = cache.get(key)
    if hit is not None:
        with _lock:  # most recently used last
            if cache.pop(key, None) is not None:
                cache[key] = hit
        return hit
    with gc_paused():
        compiled = build()
    with _lock:
        while len(cache) >= _COMPILE_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        # the byte bound is summed every few insertions: over 128 cached grammars the sum took
        # ~0.1 ms, a tenth of a small grammar's compile time
        count = vocab.cache["corral.compiled_insertions"] = vocab.cache.get("corral.compiled_insertions", 0) + 1
        if count % _BYTES_CHECK_EVERY == 0:
            total = sum(c.memory_bytes() for c in cache.values())
            while cache and total > _COMPILE_CACHE_BYTES:
                total -= cache.pop(next(iter(cache))).memory_bytes()
        cache[key] = compiled
    return compiled


def compile_grammar(grammar: Grammar, vocab, report=None) -> CompiledGrammar:
    return _cached(vocab, ("ir", grammar.fingerprint()), lambda: CompiledGrammar(grammar, vocab, report))


def _checked(compiled: CompiledGrammar, what: str) -> CompiledGrammar:
    """Refuse an empty language, and build every terminal's DFA now: a regex or Lark grammar has
    few terminals (~1 ms of DFA building on bench.engine's), and a DFA past its state budget
    (`[ab]*a[ab]{14}`: 2^15 states) must raise CompileBudgetError here, not at the first mask.
    JSON Schema grammars stay lazy: they have hundreds of key and value terminals, most of which
    a document never reaches."""
    if compiled.tables.empty_language:
        raise GrammarError(f"the {what}'s language is empty (no derivation reaches only terminals)")
    for t in range(len(compiled.tables.terminal_regexes)):
        compiled.tables.dfa(t)
        # and copied into the shared packed table, which a first mask had done term by term
        # (~10 us each, up to ~190 us in one function_call mask)
        compiled.pack_terminal(t)
    return compiled


def compile_regex(pattern: str, vocab, flavor: str = "python", flags: int = 0) -> CompiledGrammar:
    """Strings that fully match ``pattern`` (Python ``re`` syntax by default, or "ecmascript")."""
    from corral.grammars.regex_parser import parse_regex

    def build():
        try:
            node = parse_regex(pattern, flavor=flavor, flags=flags)
        except GrammarError as e:
            if e.construct != "lookahead":
                raise
            # lookaheads past one character: automaton intersections (the JSON Schema `pattern` way)
            from corral.grammars.json_schema.lookahead import fullmatch_language

            node = fullmatch_language(pattern, flavor=flavor, flags=flags)
        g = Grammar(terminals={"REGEX": node}, rules={"start": (("REGEX",),)}, start="start")
        return _checked(CompiledGrammar(g, vocab), "regex")

    return _cached(vocab, ("regex", pattern, flavor, flags), build)


def compile_lark(grammar_text: str, vocab, start: str = "start") -> CompiledGrammar:
    from corral.grammars.lark_frontend import lark_to_grammar

    return _cached(vocab, ("lark", grammar_text, start),
                   lambda: _checked(CompiledGrammar(lark_to_grammar(grammar_text, start), vocab), "grammar"))


def compile_json_schema(schema, vocab, **options) -> CompiledGrammar:
    """A JSON Schema (dict, bool or JSON text) -> CompiledGrammar; ``.report`` lists what
    ``lenient=True`` ignored. Options go to ``corral.grammars.json_schema.json_schema_to_grammar``."""
    from corral.grammars.json_schema import json_schema_to_grammar

    if isinstance(schema, (str, bytes)):
        schema = json.loads(schema)
    try:
        key = ("json_schema", json.dumps(schema, sort_keys=True), json.dumps(options, sort_keys=True, default=repr))
    except (TypeError, ValueError):
        key = None

    def build():
        result = json_schema_to_grammar(schema, **options)
        return CompiledGrammar(result.grammar, vocab, report=result.report)

    if key is None:
        with gc_paused():
            return build()
    return _cached(vocab, key, build)


# A small tool-call-like schema whose compile and first masks load what a first request would
# otherwise load inside its own latency: the JSON Schema compiler's modules and their imports
# (referencing, attrs), the format and number automata most schemas use, the key-set and string
# machinery.
_WARM_UP_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "when": {"type": "string", "format": "date-time"},
        "count": {"type": "integer", "minimum": 0, "maximum": 1000},
        "ratio": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 4},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "count"],
    "additionalProperties": False,
}
_WARM_UP_DOCUMENT = '{"name": "x", "when": "2024-01-01T00:00:00Z", "count": 7, "ratio": 0.5, "tags": ["a"], "ok": true}'


def warm_up(vocab, reserve_mb: float | None = None) -> None:
    """Do once per process and vocabulary, before the first request, what the first masks and
    the first JSON Schema compile would otherwise pay inside their latency: load the mask path's
    numba functions, build the vocabulary's common slices, fault in ``reserve_mb`` MB of bitmask
    rows (default ``CORRAL_RESERVE_MB`` or 32; masks/row_pool.py), and compile and step a small
    JSON Schema: a fresh process's first request (compile + first mask of a small schema) takes
    111-125 ms without it and 3.7 ms with it, for ~0.15 s more setup (`python -m bench.first_request`)."""
    from corral.grammars.json_schema import cpdfa, json_schema_to_grammar  # noqa: PLC0415
    from corral.masks.matcher import RESERVE_MB, reserve_rows, warm_up_mask_kernels  # noqa: PLC0415

    warm_up_mask_kernels(vocab, reserve_mb=0)
    cpdfa.warm_up()
    # compiled outside the compile cache: a throwaway that leaves its per-vocabulary walks behind
    matcher = CompiledGrammar(json_schema_to_grammar(_WARM_UP_SCHEMA).grammar, vocab).matcher()
    matcher.next_token_bits()
    matcher.accept_string(_WARM_UP_DOCUMENT)
    reserve_rows(vocab, RESERVE_MB if reserve_mb is None else reserve_mb)  # whole for the first request
