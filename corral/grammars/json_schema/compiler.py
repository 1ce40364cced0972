"""JSON Schema -> Grammar IR: normalization to per-type constraints, then grammar emission.

Pipeline. A schema position is a list of *refs* (every schema that applies to the instance there:
``Loc`` = a schema object with its base-URI resolver and JSON pointer, or ``NegLoc`` = its negation).
``normalize`` turns refs into a DNF: a list of ``Conj`` alternatives, each holding one constraint
record per JSON type (allOf merges records; anyOf/oneOf/if-then-else distribute; ``$ref`` is
inlined, or kept as a nonterminal when recursive). ``Emitter`` then writes the grammar: big
regular terminals for scalars (digit automata for numeric bounds, encoded string regexes),
nonterminals for objects (a key-set state machine: any order, required keys tracked, no
duplicate tracked keys) and arrays (a position/contains-count state machine).

Anything not enforced exactly is recorded with its JSON pointer and keyword: raised as
``UnsupportedSchemaError`` or, with ``lenient=True``, returned in the report (the keyword is then
ignored, so the grammar is looser, never stricter, than the schema).
"""
from __future__ import annotations

import decimal
import itertools
import json
import math
import time
from functools import lru_cache
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Callable

import referencing
import referencing.exceptions
import referencing.jsonschema as rj

from corral.errors import CompileBudgetError, GrammarError, SchemaError
from corral.grammars import ir
from corral.grammars import regex_ast as rx
from corral.grammars.json_schema import cpdfa, numbers as num, spelling, strings as st

TYPES = ("null", "boolean", "number", "string", "array", "object")
ANNOTATIONS = {
    "title", "description", "default", "examples", "example", "$comment", "deprecated", "readOnly",
    "writeOnly", "$schema", "$id", "id", "$anchor", "$defs", "definitions", "$vocabulary",
    "contentEncoding", "contentMediaType", "contentSchema", "$dynamicAnchor", "$recursiveAnchor",
}
DRAFT_ORDER = {rj.DRAFT4: 4, rj.DRAFT6: 6, rj.DRAFT7: 7, rj.DRAFT201909: 2019, rj.DRAFT202012: 2020, rj.DRAFT3: 3}


@dataclass(frozen=True)
class Loc:
    schema: Any
    resolver: Any = field(compare=False, hash=False)
    pointer: str
    base: str
    spec: Any = field(default=None, compare=False, hash=False)  # the dialect of its document (None: root's)

    def key(self):
        return ("loc", id(self.schema), self.base)


@dataclass(frozen=True)
class NegLoc:
    """The negation of ``loc``, restricted to the JSON types in ``only`` when given (keywords that
    apply to other types are then irrelevant and not compiled)."""
    loc: Loc
    only: frozenset | None = None

    def key(self):
        return ("not", self.only) + self.loc.key()


# keywords with a validation meaning in some draft (anything else in a schema is an annotation or
# an unknown keyword, which validators ignore)
VALIDATION_KEYWORDS = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "items", "prefixItems", "additionalItems", "unevaluatedItems",
    "contains", "minContains", "maxContains", "maxItems", "minItems", "uniqueItems", "properties",
    "patternProperties", "additionalProperties", "unevaluatedProperties", "propertyNames", "maxProperties",
    "minProperties", "required", "dependentRequired", "dependentSchemas", "dependencies", "allOf", "anyOf",
    "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
}

# the JSON type each type-specific keyword constrains (it is vacuous on the others)
KEYWORD_TYPE = {
    **{k: "object" for k in ("properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                             "minProperties", "maxProperties", "dependencies", "dependentRequired",
                             "dependentSchemas", "unevaluatedProperties")},
    **{k: "array" for k in ("items", "prefixItems", "additionalItems", "contains", "minContains", "maxContains",
                            "uniqueItems", "minItems", "maxItems", "unevaluatedItems")},
    **{k: "string" for k in ("pattern", "minLength", "maxLength", "format")},
    **{k: "number" for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")},
}


def _value_excluded(v, c: "Conj") -> bool:
    """Provably ``c`` rejects the value ``v`` (its type, or the value itself, is excluded)."""
    t = json_type(v)
    if t not in c.types:
        return True
    if t == "string":
        return any(v == x for x in c.str.excluded)
    if t == "number":
        d = to_decimal(v)
        return any(d == x for x in c.num.excluded)
    if t == "boolean":
        return v not in c.bools
    if t == "null":
        return not c.null_ok
    return False


def _canonical(schema) -> str:
    return json.dumps(schema, sort_keys=True, ensure_ascii=False)


def _split_canon(ref) -> tuple | None:
    """A value ref by content (negated?, schema text, base URI): equal for the same schema reached
    through different pointers. None for refs a value split does not take."""
    loc = ref.loc if isinstance(ref, NegLoc) else ref
    if not isinstance(loc, Loc) or (isinstance(ref, NegLoc) and ref.only is not None):
        return None
    return isinstance(ref, NegLoc), _canonical(loc.schema), loc.base


def refs_key(refs) -> tuple:
    return tuple(sorted({r.key() for r in refs}))  # a conjunction: order and repeats do not matter


# ------------------------------------------------------------------ per-type constraint records

@dataclass
class NumC:
    integer: bool = False
    int_zero_fraction: bool = True  # 1.0 counts as an integer (draft 6+; draft 4 says no)
    lo: Decimal | None = None
    lo_strict: bool = False
    hi: Decimal | None = None
    hi_strict: bool = False
    multiple_of: tuple = ()
    excluded: tuple = ()
    positive: tuple = ()  # extra spelling regexes the number must match (from negations)
    negative: tuple = ()  # spelling regexes it must not match

    def merge(self, o: "NumC") -> "NumC":
        lo, ls = self.lo, self.lo_strict
        if o.lo is not None and (lo is None or o.lo > lo or (o.lo == lo and o.lo_strict)):
            lo, ls = o.lo, o.lo_strict
        hi, hs = self.hi, self.hi_strict
        if o.hi is not None and (hi is None or o.hi < hi or (o.hi == hi and o.hi_strict)):
            hi, hs = o.hi, o.hi_strict
        return NumC(self.integer or o.integer, self.int_zero_fraction and o.int_zero_fraction, lo, ls, hi, hs,
                    self.multiple_of + o.multiple_of,
                    self.excluded + o.excluded, self.positive + o.positive, self.negative + o.negative)


@dataclass
class StrC:
    min_len: int = 0
    max_len: int | None = None
    patterns: tuple = ()  # (regex over decoded text, pointer)
    negative: tuple = ()  # regexes the string must not match
    excluded: tuple = ()
    raw_only: bool = False  # a format applies: spelled raw (see docs: spelling policy)

    def merge(self, o: "StrC") -> "StrC":
        mx = self.max_len if o.max_len is None else o.max_len if self.max_len is None else min(self.max_len, o.max_len)
        return StrC(max(self.min_len, o.min_len), mx, self.patterns + o.patterns, self.negative + o.negative,
                    self.excluded + o.excluded, self.raw_only or o.raw_only)


@dataclass
class ArrC:
    prefix: tuple = ()  # tuple of ref-lists, one per position
    items: tuple | None = None  # ref-list for the rest (None: any)
    groups: tuple = ()  # (prefix, items) per contributing schema, merged positionally at emit
    min_items: int = 0
    max_items: int | None = None
    contains: tuple = ()  # (refs, min, max, pointer)
    unique: bool = False
    pointer: str = ""

    def merge(self, o: "ArrC") -> "ArrC":
        mx = self.max_items if o.max_items is None else o.max_items if self.max_items is None else min(self.max_items, o.max_items)
        return ArrC(groups=self.groups + o.groups, min_items=max(self.min_items, o.min_items), max_items=mx,
                    contains=self.contains + o.contains, unique=self.unique or o.unique, pointer=self.pointer or o.pointer)


@dataclass
class ObjGroup:
    props: dict  # key -> ref list
    patterns: tuple  # (decoded-key regex, ref list)
    additional: tuple | None  # ref list; None = any value


@dataclass
class ObjC:
    groups: tuple = ()
    required: frozenset = frozenset()
    forbidden: frozenset = frozenset()
    names: tuple = ()  # propertyNames refs
    min_props: int = 0
    max_props: int | None = None
    dep_required: tuple = ()  # (key, frozenset)
    pointer: str = ""
    required_order: tuple = ()  # required keys in schema order (for property_order="schema")
    # "some member satisfies one of these alternatives" (the negation of properties /
    # patternProperties / additionalProperties / propertyNames: one witness per negated schema,
    # so that intersecting several negations adds witnesses instead of multiplying alternatives).
    # A witness is a tuple of alternatives (key regexes all matched, key regexes none matched,
    # value refs, the literal key or None); see ``Compiler._witness_members``
    witnesses: tuple = ()

    def merge(self, o: "ObjC") -> "ObjC":
        mx = self.max_props if o.max_props is None else o.max_props if self.max_props is None else min(self.max_props, o.max_props)
        return ObjC(self.groups + o.groups, self.required | o.required, self.forbidden | o.forbidden,
                    self.names + o.names, max(self.min_props, o.min_props), mx, self.dep_required + o.dep_required,
                    self.pointer or o.pointer, self.required_order + o.required_order,
                    self.witnesses + tuple(w for w in o.witnesses if w not in self.witnesses))


@dataclass
class Conj:
    """One alternative: allowed types, a constraint record per type, an optional finite value set."""

    types: frozenset = frozenset(TYPES)
    num: NumC = field(default_factory=NumC)
    str: StrC = field(default_factory=StrC)
    arr: ArrC = field(default_factory=ArrC)
    obj: ObjC = field(default_factory=ObjC)
    enum: tuple | None = None  # candidate values (validated against ``origins`` at emission)
    bools: frozenset = frozenset({True, False})
    null_ok: bool = True
    origins: tuple = ()
    nt: str | None = None  # an opaque nonterminal (a recursive $ref), other fields unused
    nt_refs: tuple = ()

    def merge(self, o: "Conj") -> "Conj":
        if self.enum is not None and o.enum is not None:
            keys = {json_key(w) for w in o.enum}
            enum = tuple(v for v in self.enum if json_key(v) in keys)
        else:
            enum = self.enum if o.enum is None else o.enum
        return Conj(self.types & o.types, self.num.merge(o.num), self.str.merge(o.str), self.arr.merge(o.arr),
                    self.obj.merge(o.obj), enum, self.bools & o.bools, self.null_ok and o.null_ok,
                    self.origins + o.origins)


def json_key(v):
    """A hashable canonical form: ``json_key(a) == json_key(b)`` exactly when ``json_equal(a, b)``
    (sets of keys replace the quadratic pairwise dedupes: a 2,400-value enum took 3M comparisons)."""
    if v is None:
        return ("n",)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("d", to_decimal(v))  # Decimal hashes agree with equality: 1 and 1.0 are one key
    if isinstance(v, str):
        return ("s", v)
    if isinstance(v, list):
        return ("l", tuple(json_key(x) for x in v))
    if isinstance(v, dict):
        return ("o", frozenset((k, json_key(x)) for k, x in v.items()))
    return ("?", repr(v))


def json_unique(values) -> list:
    """``values`` without JSON-equal repeats, first occurrences in order."""
    seen, out = set(), []
    for v in values:
        k = json_key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def json_equal(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return to_decimal(a) == to_decimal(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def to_decimal(v) -> Decimal:
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SchemaError(f"non-finite number {v!r}")
        return Decimal(repr(v))
    return Decimal(v)


def json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise SchemaError(f"not a JSON value: {v!r}")


# ------------------------------------------------------------------ options

@dataclass
class Options:
    whitespace: Any = "flexible"
    max_whitespace: int = 64
    lenient: bool = False
    strict_properties: bool = False
    property_order: str = "any"
    # "all": a string may be written in any JSON spelling (raw, short or \uXXXX escapes), as JSON
    # means; "minimal": only as json.dumps(..., ensure_ascii=False) writes it (a generation default:
    # every value keeps exactly one spelling, so nothing is lost, and a model cannot drift into
    # escapes). Key regions and pattern strings spelled from an automaton keep every spelling.
    escapes: str = "all"
    format_assert: bool = True
    exact_leap_seconds: bool = False  # time/date-time: leap seconds in any offset (a 1440-entry table)
    max_tracked_keys: int = 8  # objects with at most this many declared keys track all of them
    # larger objects track only their required/dependent keys (2**n key sets, built as reached):
    # measured on MaskBench Github_medium, 16 recovers most >8-required-key objects in < 0.2 s compile
    max_tracked_required: int = 16
    max_dnf: int = 4096  # alternatives after distributing anyOf/oneOf/allOf
    max_rules: int = 200000
    # wall-clock seconds for turning the schema into a grammar (None: no limit): a schema whose
    # combinators keep multiplying fails with a CompileBudgetError instead of running on. Well
    # past MaskBench's 30 s per schema (compile and first mask), so that a slower machine loses no
    # schema to it that the harness's own timeout would have let through (Github_hard o1184 spends
    # ~13 s here on the 2-core box and passes)
    max_seconds: float | None = 60.0
    # alternatives an object's any-order key-set machine (LAZY_KEY_SETS_FROM tracked keys or more)
    # may list up front; larger ones become a KeySetFamily, built as parsed: a document visits a
    # chain of its 2^n key sets. 0 (default): every such machine is a family; listing them up to
    # half of max_rules (None) made an 8-key object 4,600 alternatives, ~9 ms of compile, and
    # in-process over 396 MaskBench schemas compile p50 6.78 -> 6.08 ms, masks unchanged
    eager_key_set_alternatives: int | None = 0
    max_array_states: int = 20000
    retrieve: Callable[[str], Any] | None = None  # uri -> schema document, for remote $refs
    default_dialect: str = "https://json-schema.org/draft/2020-12/schema"


MAX_ONE_OF_CONTEXT = 8  # sibling alternatives a oneOf's overlap test is scoped by
MAX_CONTAINS = 5  # contains constraints per array: 2**n item kinds
MAX_WITNESSES = 6  # "some member" constraints per object: 2**n masks of member variants
MAX_WITNESS_SPLITS = 4  # presence splits of one object (2**splits objects) to get under MAX_WITNESSES
MAX_KEY_REGIONS = 256
LAZY_KEY_SETS_FROM = 4  # tracked keys from which an object's key sets may be built lazily (KeySetFamily)
MAX_SHARED_ENUM_CHECKS = 64  # values two enums share that a disjointness proof validates
MIN_TAGGED_UNION = 3  # branches from which a union's negation looks for a tag key first
MIN_VALUE_KEYED_DEPENDENCIES = 3  # dependent schemas from which a split by one key's value is tried
MAX_DISJOINT_DEPTH = 12  # nested values a disjointness proof may look into
MAX_TERMINAL_POSITIONS = 40000
# spelling automaton states (before minimization) of one key-region terminal; the byte DFA stays
# within the terminal budget (20,000 states) below this
MAX_KEY_AUTOMATON_STATES = 8000
_ANY_STRING = rx.repeat(rx.any_char(), 0, None)
STRING_SET_CHARS = 1000  # characters of the string enum values spelled by one terminal
_B64 = rx.union_chars(rx.char_range("A", "Z"), rx.char_range("a", "z"), rx.char_range("0", "9"), rx.char_set("+/"))
# RFC 4648 base64 with padding (draft 7 contentEncoding; the Test Suite rejects other characters)
BASE64 = rx.seq(rx.star(rx.repeat(_B64, 4, 4)),
                rx.optional(rx.alt(rx.seq(rx.repeat(_B64, 2, 2), rx.literal("==")), rx.seq(rx.repeat(_B64, 3, 3), rx.literal("=")))))  # a key region's quoted regex (the byte automaton refuses 80000)  # a string terminal's unrolled size (half the byte automaton's budget)  # regions of undeclared keys, split by the patternProperties each matches
LONG_STRING = 48  # length bounds above this use chunked strings (see Compiler._long_string)
# characters per chunk: a mask walks below a chunk boundary only where a token reaches it, so
# longer chunks leave most positions without one (`maxLength: 5000`: 134 -> 45 us a mask at 16 -> 64;
# 128 gave 28 us but doubled each chunk automaton's first root walks)
STRING_CHUNK = 64


class Compiler:
    def __init__(self, schema, options: Options):
        self.opt = options
        self._deadline = None
        self.issues: list[tuple[str, str, str]] = []
        self._seen_issues: set = set()
        self.b = ir.GrammarBuilder()
        self.root = schema
        default_spec = rj.specification_with(options.default_dialect)
        if isinstance(schema, dict) and isinstance(schema.get("$schema"), str):
            uri = schema["$schema"]
            for cand in (uri, uri + "#", uri.rstrip("#")):
                try:
                    default_spec = rj.specification_with(cand)
                    break
                except (referencing.exceptions.CannotDetermineSpecification, rj.UnknownDialect):
                    continue
            else:
                # an unknown $schema: a typo or a custom meta-schema. Only a meta-schema we can actually
                # load is known to define vocabularies (which may drop validation): report that case.
                meta = None
                if options.retrieve is not None:
                    try:
                        meta = options.retrieve(uri)
                    except Exception:
                        meta = None
                if isinstance(meta, dict) and "$vocabulary" in meta:
                    self.unsupported("", "$schema", f"custom meta-schema {uri!r} with its own vocabularies")
        self.spec = default_spec
        self.draft = DRAFT_ORDER.get(default_spec, 2020)
        retrieve = options.retrieve

        def _retrieve(uri):
            doc = retrieve(uri) if retrieve is not None else None
            if doc is None:
                doc = _bundled_metaschema(uri)  # the drafts' meta-schemas ship with jsonschema (offline)
            if doc is None:
                raise referencing.exceptions.NoSuchResource(ref=uri)
            return referencing.Resource.from_contents(doc, default_specification=default_spec)

        try:
            resource = referencing.Resource.from_contents(schema, default_specification=default_spec)
        except referencing.exceptions.CannotDetermineSpecification:
            resource = default_spec.create_resource(schema)
        self.registry = referencing.Registry(retrieve=_retrieve).with_resource("", resource)
        if resource.id():
            self.registry = self.registry.with_resource(resource.id(), resource)
        try:
            self.registry = self.registry.crawl()
        except (TypeError, AttributeError):
            # an embedded resource declares an older draft but holds booleans (or other
            # non-objects) where that draft expects schemas: the crawl cannot index it, so only
            # the root's own ids are registered; a $ref that needed the crawl is then unresolvable
            # and reported as such.
            pass
        resolver = self.registry.resolver("")
        if resource.id():
            resolver = resolver.in_subresource(resource)
        self.root_loc = Loc(schema, resolver, "", str(resolver._base_uri))
        self._value_memo: dict = {}
        self._norm_stack: list = []
        self._norm_memo: dict = {}
        self._emit_memo: dict = {}
        self._intersect_stack: set = set()  # opaque (recursive) alternatives being inlined by intersect
        self._disjoint_depth = 0
        self._lifted: dict = {}
        self._unique_opening: dict[str, str] = {}  # unique array nonterminal -> its opening terminal
        self._validator_memo: dict = {}
        self._setup_punctuation()

    # ---------------------------------------------------------------- issues
    def unsupported(self, pointer: str, keyword: str, reason: str) -> None:
        key = (pointer, keyword, reason)
        if key not in self._seen_issues:
            self._seen_issues.add(key)
            self.issues.append(key)

    # ---------------------------------------------------------------- punctuation & whitespace
    def _setup_punctuation(self) -> None:
        w = self.opt.whitespace
        if w == "flexible":
            ws = rx.repeat(rx.char_set(" \t\n\r"), 0, self.opt.max_whitespace)
            item, key = rx.seq(ws, rx.literal(","), ws), rx.seq(ws, rx.literal(":"), ws)
            lb, rb = rx.seq(rx.literal("{"), ws), rx.seq(ws, rx.literal("}"))
            lk, rk = rx.seq(rx.literal("["), ws), rx.seq(ws, rx.literal("]"))
        else:
            if w == "compact":
                w = (",", ":")
            if not (isinstance(w, (tuple, list)) and len(w) == 2 and all(isinstance(s, str) for s in w)):
                raise ValueError("whitespace must be 'flexible', 'compact' or (item_separator, key_separator)")
            item, key = rx.literal(w[0]), rx.literal(w[1])
            lb, rb, lk, rk = rx.literal("{"), rx.literal("}"), rx.literal("["), rx.literal("]")
        self.colon_re = key
        if self.opt.escapes not in ("all", "minimal"):
            raise ValueError("escapes must be 'all' or 'minimal'")
        # how string bodies are spelled (strings.encode_for): every JSON spelling, or json.dumps' one
        self._quote_mode = "minimal" if self.opt.escapes == "minimal" else True
        self._key_symbols: dict[str, str] = {}  # key terminal -> "key then colon" nonterminal
        self.COMMA = self.b.terminal(item, "COMMA")
        self.LBRACE = self.b.terminal(lb, "LBRACE")
        self.RBRACE = self.b.terminal(rb, "RBRACE")
        self.LBRACK = self.b.terminal(lk, "LBRACK")
        self.RBRACK = self.b.terminal(rk, "RBRACK")
        self.NEVER = self.b.terminal(rx.NOTHING, "NEVER")

    # ---------------------------------------------------------------- public
    def compile(self) -> ir.Grammar:
        if self.opt.max_seconds is not None:
            self._deadline = time.perf_counter() + self.opt.max_seconds
        start = self.value_nt([self.root_loc])
        self.b.rule("start", [(start,)])
        self._check_budget()
        return self.b.build("start")

    def _check_budget(self):
        if self.b.n_alternatives > self.opt.max_rules:
            raise CompileBudgetError(f"grammar exceeds {self.opt.max_rules} rule alternatives")
        self._check_time()

    def _check_time(self):
        if self._deadline is not None and time.perf_counter() > self._deadline:
            raise CompileBudgetError(f"compiling the schema took more than {self.opt.max_seconds:g} s")

    # ---------------------------------------------------------------- helpers on locs
    def child(self, loc: Loc, schema, *path) -> Loc:
        ptr = loc.pointer + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
        resolver = loc.resolver
        base = loc.base
        if isinstance(schema, dict):
            try:
                resource = (loc.spec or self.spec).create_resource(schema)
                sub_id = resource.id()
            except Exception:
                sub_id = None
            if sub_id is not None:
                resolver = resolver.in_subresource(resource)
                base = str(resolver._base_uri)
        return Loc(schema, resolver, ptr, base, loc.spec)

    def resolve_ref(self, loc: Loc, ref: str, keyword: str) -> Loc:
        try:
            resolved = loc.resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as e:
            raise SchemaError(f"cannot resolve $ref {ref!r}: {e}", loc.pointer + "/" + keyword)
        resolver = resolved.resolver  # already based at the target's own $id, if any
        schema = resolved.contents
        spec = loc.spec
        if isinstance(schema, dict) and isinstance(schema.get("$schema"), str):
            try:  # a document of another dialect is compiled with its own dialect's rules
                spec = rj.specification_with(schema["$schema"])
            except Exception:
                pass
        return Loc(schema, resolver, f"{loc.pointer}/{keyword}->{ref}", str(resolver._base_uri) + "#" + str(id(schema)),
                   spec)

    def draft_of(self, loc) -> int:
        spec = loc.spec if isinstance(loc, Loc) else None
        return self.draft if spec is None else DRAFT_ORDER.get(spec, self.draft)

    # ---------------------------------------------------------------- values
    def value_nt(self, refs) -> str:
        """The nonterminal for an instance satisfying every schema in ``refs`` (memoized, recursion-safe)."""
        key = refs_key(refs)
        name = self._value_memo.get(key)
        if name is not None:
            return name
        name = self.b.fresh("value")
        self._value_memo[key] = name
        dnf = self.normalize_refs(list(refs))
        alts = []
        for c in dnf:
            alts.extend(self.emit_conj(c))
        if not alts:
            alts = [(self.NEVER,)]
        self.b.rule(name, alts)
        self._check_budget()
        return name

    def satisfiable_nt(self, refs) -> str | None:
        name = self.value_nt(refs)
        if self.b.rules.get(name) == [(self.NEVER,)]:
            return None
        return name

    # ---------------------------------------------------------------- normalization
    def normalize_refs(self, refs) -> list[Conj]:
        dnf = [Conj()]
        seen = set()
        for r in refs:
            r = self._through_pure_refs(r)
            k = r.key()
            if k in seen:  # the same schema twice (merged groups repeat them): once is enough
                continue
            seen.add(k)
            dnf = self.product(dnf, self.normalize(r))
            if not dnf:
                break
        return dnf

    def _through_pure_refs(self, r):
        """A location that is only ``{"$ref": ...}`` (annotations aside) stands for its target: the
        same definition reached through two references is then recognized as one (negated too:
        "size is not fieldSize" from each of ten branches' own ``{"$ref": fieldSize}``)."""
        if isinstance(r, NegLoc):
            inner = self._through_pure_refs(r.loc)
            return r if inner is r.loc else NegLoc(inner, r.only)
        for _ in range(16):
            if not isinstance(r, Loc) or not isinstance(r.schema, dict) or "$ref" not in r.schema:
                return r
            if any(k not in ANNOTATIONS for k in r.schema if k != "$ref"):
                return r
            try:
                r = self.resolve_ref(r, r.schema["$ref"], "$ref")
            except SchemaError:
                return r
        return r

    def product(self, a: list[Conj], b: list[Conj]) -> list[Conj]:
        out = []
        for x in a:
            for y in b:
                m = self.intersect(x, y)
                if isinstance(m, _Multi):
                    # an opaque side inlined into several alternatives: they are the result (a
                    # _Multi left in a DNF reads as an unconstrained Conj wherever it goes next)
                    out.extend(m.items)
                elif m is not None:
                    out.append(m)
        if len(out) > self.opt.max_dnf:
            raise CompileBudgetError(f"schema combinators expand to more than {self.opt.max_dnf} alternatives")
        self._check_time()
        return out

    def intersect(self, x: Conj, y: Conj) -> Conj | None:
        if x.nt is not None or y.nt is not None:
            if x.nt is not None and _is_trivial(y):
                return x
            if y.nt is not None and _is_trivial(x):
                return y
            # inline the opaque side when possible; inlining a recursive definition can give back
            # the same opaque alternative (its memoized normal form refers to itself): then only
            # a disjointness proof helps ("null" against a recursive object), else it is reported
            pair = (refs_key(x.nt_refs) if x.nt is not None else None, refs_key(y.nt_refs) if y.nt is not None else None)
            if pair in self._intersect_stack:
                if self.disjoint(x, y):
                    return None
                opaque = x if x.nt is not None else y
                loc = opaque.nt_refs[0].loc if isinstance(opaque.nt_refs[0], NegLoc) else opaque.nt_refs[0]
                self.unsupported(loc.pointer, "$ref", "recursive reference combined with sibling constraints")
                return opaque
            self._intersect_stack.add(pair)
            try:
                res = self.product(self.inline(x), self.inline(y))
            finally:
                self._intersect_stack.discard(pair)
            return res[0] if len(res) == 1 else (None if not res else _Multi(res))
        m = x.merge(y)
        if "object" in m.types and (x.obj.required or y.obj.required) and (
                m.obj.required & m.obj.forbidden
                or any(self._forbids_key(y.obj, k) for k in x.obj.required)
                or any(self._forbids_key(x.obj, k) for k in y.obj.required)
                or (x.obj.groups and y.obj.groups and self._type_disjoint("object", x, y))):
            # e.g. S_i AND NOT S_j of a oneOf: "k absent" against S_i requiring k, or "key k present
            # with a value outside S_j(k)" against S_i(k) == S_j(k); pruned here, the product of
            # many negations stays small
            m.types = m.types - {"object"}
        if not m.types:
            return None
        return m

    def inline(self, c: Conj) -> list[Conj]:
        if c.nt is None:
            return [c]
        key = refs_key(c.nt_refs)
        if key in self._norm_stack:
            loc = c.nt_refs[0].loc if isinstance(c.nt_refs[0], NegLoc) else c.nt_refs[0]
            self.unsupported(loc.pointer, "$ref", "recursive reference combined with sibling constraints")
            return [Conj()]
        return self.normalize_refs(list(c.nt_refs))

    def normalize(self, r) -> list[Conj]:
        key = r.key()
        if key in self._norm_memo:
            return self._norm_memo[key]
        if key in self._norm_stack:
            # a cycle through $ref/allOf/anyOf without an intervening value: keep it opaque
            return [Conj(nt=self.value_nt([r]), nt_refs=(r,))]
        self._norm_stack.append(key)
        try:
            res = self.finite_values(r) if isinstance(r, Loc) else None
            if res is None:
                res = self.string_algebra(r)
            if res is not None:
                pass
            elif isinstance(r, NegLoc):
                res = self.negate(r.loc, r.only)
            else:
                res = self._normalize_loc(r)
        except CompileBudgetError as e:
            raise e.located((r.loc if isinstance(r, NegLoc) else r).pointer) from None
        finally:
            self._norm_stack.pop()
        res = _flatten(res)
        self._norm_memo[key] = res
        return res

    def _normalize_loc(self, loc: Loc) -> list[Conj]:
        s = loc.schema
        if s is True:
            return [Conj(origins=(loc,))]
        if s is False:
            return []
        if not isinstance(s, dict):
            raise SchemaError("a schema must be an object or a boolean", loc.pointer)
        d = self.draft_of(loc)
        if "$ref" in s and d <= 7:
            target = self.resolve_ref(loc, s["$ref"], "$ref")
            return self.normalize_pure_ref(target)
        own = self.own_conj(loc)
        dnf = [own]
        for kw in ("$ref",):
            if kw in s:
                target = self.resolve_ref(loc, s[kw], kw)
                dnf = self.product(dnf, self.normalize_pure_ref(target))
        for kw in ("$dynamicRef", "$recursiveRef"):
            if kw in s:
                target = self._static_dynamic_target(loc, kw, s[kw])
                if target is not None:
                    dnf = self.product(dnf, self.normalize_pure_ref(target))
                else:
                    self.unsupported(loc.pointer, kw, "dynamic scoping is not compiled")
        if "allOf" in s:
            for i, sub in enumerate(_list(s["allOf"], loc, "allOf")):
                child = self.child(loc, sub, "allOf", i)
                if isinstance(sub, dict) and {k for k in sub if k not in ANNOTATIONS} == {"oneOf"}:
                    # a bare oneOf: decided within the siblings built so far (see one_of)
                    dnf = self.product(dnf, self.one_of(child, _list(sub["oneOf"], child, "oneOf"), dnf))
                else:
                    dnf = self.product(dnf, self.normalize(child))
        if "anyOf" in s:
            alts = []
            for i, sub in enumerate(_list(s["anyOf"], loc, "anyOf")):
                alts.extend(self.normalize(self.child(loc, sub, "anyOf", i)))
            dnf = self.product(dnf, alts)
        if "oneOf" in s:
            dnf = self.product(dnf, self.one_of(loc, _list(s["oneOf"], loc, "oneOf"), dnf))
        if "not" in s:
            dnf = self.product(dnf, self.normalize(NegLoc(self.child(loc, s["not"], "not"))))
        if d >= 7 and "if" in s and ("then" in s or "else" in s):
            cond = self.child(loc, s["if"], "if")
            then = self.normalize(self.child(loc, s["then"], "then")) if "then" in s else [Conj()]
            other = self.normalize(self.child(loc, s["else"], "else")) if "else" in s else [Conj()]
            branch = self.product(self.normalize(cond), then) + self.product(self.normalize(NegLoc(cond)), other)
            dnf = self.product(dnf, branch)
        if d >= 2019 and "dependentSchemas" in s:
            dnf = self._dependent_schemas(loc, dnf, s["dependentSchemas"], "dependentSchemas")
        if isinstance(s.get("dependencies"), dict):  # draft <= 7; honored later too (compatibility)
            schemas = {k: v for k, v in s["dependencies"].items() if not isinstance(v, list)}
            if schemas:
                dnf = self._dependent_schemas(loc, dnf, schemas, "dependencies")
        return dnf

    def _static_dynamic_target(self, loc: Loc, kw: str, ref) -> Loc | None:
        """Where a ``$recursiveRef`` / ``$dynamicRef`` goes when that does not depend on the path
        taken to it: the statically resolved target, unless it declares the anchor that makes
        the reference dynamic (then the outermost such anchor in the dynamic scope decides: the
        root's when the root schema declares it at its top, otherwise not compiled: None)."""
        if not isinstance(ref, str):
            raise SchemaError(f"{kw} must be a string", loc.pointer)
        if kw == "$recursiveRef":
            if ref != "#":
                return self.resolve_ref(loc, ref, kw)
            target = self.resolve_ref(loc, "#", kw)
            if not (isinstance(target.schema, dict) and target.schema.get("$recursiveAnchor") is True):
                return target
            root = self.root_loc.schema
            if isinstance(root, dict) and root.get("$recursiveAnchor") is True:
                return self.root_loc
            return None
        target = self.resolve_ref(loc, ref, kw)
        name = ref.partition("#")[2]
        if not (isinstance(target.schema, dict) and target.schema.get("$dynamicAnchor") == name):
            return target  # no bookending anchor: a plain $ref
        if _declares_dynamic_anchor(self.root_loc.schema, name):
            return self.resolve_ref(self.root_loc, "#" + name, kw)  # the root resource is outermost
        return None

    def normalize_pure_ref(self, target: Loc) -> list[Conj]:
        key = target.key()
        if key in self._norm_stack:
            return [Conj(nt=self.value_nt([target]), nt_refs=(target,))]
        return self.normalize(target)

    def _dependent_schemas(self, loc, dnf, deps, kw):
        if not isinstance(deps, dict):
            raise SchemaError(f"{kw} must be an object", loc.pointer)
        keyed = self._dependencies_on_one_value(loc, deps, kw)
        if keyed is not None:
            return self.product(dnf, keyed)
        for k, sub in deps.items():
            absent = Conj(obj=ObjC(forbidden=frozenset([k])))
            present = self.product([Conj(obj=ObjC(required=frozenset([k])))], self.normalize(self.child(loc, sub, kw, k)))
            # non-objects satisfy the dependency vacuously
            non_obj = Conj(types=frozenset(TYPES) - {"object"})
            dnf = self.product(dnf, [non_obj, absent] + present)
        return dnf

    def _dependencies_on_one_value(self, loc, deps, kw) -> list[Conj] | None:
        """Dependent schemas that each only restrict one key ``t`` to a finite set ("analyzer
        needs type autocomplete or string", "maxGrams needs type autocomplete", ...: 17 of them in
        a JsonSchemaStore index definition), split by ``t``'s value instead of key by key (2**17
        alternatives before pruning): t absent (every dependency holds), or t's value in a cell
        of values that the same dependency sets hold, with the keys whose set misses the cell
        forbidden, or t's value in no set, with every dependency key forbidden. None when the
        dependencies are not of that form."""
        if len(deps) < MIN_VALUE_KEYED_DEPENDENCIES:
            return None
        tag, sets, everything = None, {}, {}
        for k, sub in deps.items():
            if not (isinstance(sub, dict) and {x for x in sub if x not in ANNOTATIONS} == {"properties"}
                    and isinstance(sub["properties"], dict) and len(sub["properties"]) == 1):
                return None
            (t, value_schema), = sub["properties"].items()
            if tag is None:
                tag = t
            elif t != tag:
                return None
            allowed = {}
            for c in self.normalize(self.child(loc, value_schema, kw, k, "properties", t)):
                if c.nt is not None or c.enum is None:
                    return None
                allowed.update((json_key(v), v) for v in c.enum if self.value_allowed(v, c))
            sets[k] = allowed
            everything.update(allowed)
        cells: dict = {}  # the dependency keys whose sets hold a value -> those values
        for key, v in everything.items():
            cells.setdefault(frozenset(k for k, allowed in sets.items() if key in allowed), []).append(v)
        obj = frozenset(["object"])

        def with_tag(refs, forbidden) -> Conj:
            return Conj(types=obj, obj=ObjC(required=frozenset([tag]), forbidden=frozenset(forbidden),
                                            groups=(ObjGroup({tag: refs}, (), None),)))

        out = [Conj(types=frozenset(TYPES) - obj), Conj(types=obj, obj=ObjC(forbidden=frozenset([tag])))]
        for holders, values in cells.items():
            out.append(with_tag((self._synthetic_enum(values, loc),), set(sets) - holders))
        if everything:
            out.append(with_tag((NegLoc(self._synthetic_enum(list(everything.values()), loc)),), sets))
        else:
            out.append(with_tag((), sets))
        return out

    def _synthetic_enum(self, values: list, loc: Loc) -> Loc:
        """A location of ``{"enum": values}`` (kept alive, so its identity keys the memos)."""
        key = ("synthetic-enum", loc.key(), tuple(sorted(repr(json_key(v)) for v in values)))  # (repr: any mix sorts)
        if key not in self._lifted:
            self._lifted[key] = Loc({"enum": json_unique(values)}, loc.resolver, loc.pointer, loc.base, loc.spec)
        return self._lifted[key]

    def one_of(self, loc: Loc, subs, context: list | None = None) -> list[Conj]:
        """Exactly one branch. Disjoint branches: their union. Otherwise the exact rewrite
        oneOf(S1..Sn) = OR_i (S_i AND NOT S_j for every j that may overlap S_i), when every needed
        negation compiles (see ``negate``); else reported (lenient: anyOf).

        ``context``: the alternatives the result will be intersected with (the sibling keywords);
        branches disjoint within it need no negation (a discriminator property whose key the
        parent schema requires)."""
        lifted = self._common_conjuncts(loc, subs)
        if lifted is not None:
            common, subs = lifted
            shared = self.normalize_refs(common)
            inner_context = shared
            if context is not None and not all(_is_trivial(x) for x in context):
                try:
                    inner_context = self.product(context, shared)
                except CompileBudgetError:
                    inner_context = shared
            return self.product(shared, self.one_of(loc, subs, inner_context))
        children = [self.child(loc, sub, "oneOf", i) for i, sub in enumerate(subs)]
        branches = [self.normalize(c) for c in children]
        if all(c.nt is None and c.enum is not None for b in branches for c in b):
            # finite branches (enum / const): the values that exactly one branch holds
            candidates = json_unique(v for b in branches for c in b for v in c.enum)
            enum_keys = {id(c): {json_key(w) for w in c.enum} for b in branches for c in b}

            def holds(v, b) -> bool:
                return any(json_key(v) in enum_keys[id(c)] and self.value_allowed(v, c) for c in b)

            once = tuple(v for v in candidates if sum(holds(v, b) for b in branches) == 1)
            return [Conj(enum=once)] if once else []
        if context is not None and (len(context) > MAX_ONE_OF_CONTEXT or all(_is_trivial(x) for x in context)):
            context = None
        scoped = branches
        if context is not None:
            try:
                scoped = [self.product(context, b) for b in branches]
            except CompileBudgetError:
                scoped = branches
        overlaps: dict[int, set] = {i: set() for i in range(len(subs))}
        overlap_types: dict[tuple, frozenset] = {}
        for i in range(len(subs)):
            for j in range(i + 1, len(subs)):
                ts = frozenset().union(*(self.overlap_types(a, c) for a in scoped[i] for c in scoped[j]))
                if ts:
                    overlaps[i].add(j)
                    overlaps[j].add(i)
                    overlap_types[(i, j)] = overlap_types[(j, i)] = ts
        if not any(overlaps.values()):
            return [c for b in branches for c in b]
        mark = len(self.issues)
        out: list[Conj] = []
        try:
            for i in range(len(subs)):
                dnf = branches[i]
                for j in sorted(overlaps[i]):
                    # S_i AND NOT S_j only matters on the types where they may overlap
                    ts = overlap_types[(i, j)]
                    rest = frozenset(TYPES) - ts
                    not_j = ([Conj(types=rest)] if rest else []) + self.normalize(
                        NegLoc(children[j], None if not rest else ts))
                    dnf = self.product(dnf, not_j)
                out.extend(dnf)
        except CompileBudgetError as e:
            out, why = None, str(e)
        if out is not None and len(self.issues) == mark:
            return out
        if out is not None:
            ptr, kw, reason = self.issues[mark]
            why = f"{ptr or '#'}: {kw}: {reason}"
        del self.issues[mark:]
        self._seen_issues = set(self.issues)
        i, j = next((i, min(js)) for i, js in overlaps.items() if js)
        self.unsupported(loc.pointer, "oneOf", f"branches {i} and {j} may overlap and their negation is not compiled "
                                               f"(treated as anyOf): {why}")
        return [c for b in branches for c in b]

    def _common_conjuncts(self, loc: Loc, subs) -> tuple[list, list] | None:
        """oneOf(A and B1, ..., A and Bn) == A and oneOf(B1, ..., Bn): a conjunct every branch
        shares (the same allOf member, e.g. a "base definition" $ref) is lifted out, so that the
        negations of the other branches no longer negate it (each such negation multiplies the
        alternatives by all of A's ways to fail). Returns the shared schemas' locations and the
        reduced branches (kept alive in ``self._lifted``), or None."""
        if len(subs) < 2 or not all(isinstance(b, dict) for b in subs):
            return None
        d = self.draft_of(loc)
        homes = self._pure_ref_targets(loc, subs)
        if homes is not None:
            subs = [h.schema for h in homes]
            if not all(isinstance(b, dict) for b in subs):
                return None
        parts_of = []
        for b in subs:
            if any(k in b for k in ("$id", "id", "$anchor", "$dynamicAnchor", "$recursiveAnchor")):
                return None  # a branch with its own base: its members' references resolve elsewhere
            if "$ref" in b and d <= 7 and any(k in VALIDATION_KEYWORDS for k in b if k != "$ref"):
                return None  # $ref hides its siblings there
            if "unevaluatedProperties" in b or "unevaluatedItems" in b:
                return None  # they see what the branch's allOf evaluates: the branch must stay whole
            items = b.get("allOf") if isinstance(b.get("allOf"), list) else []
            rest = {k: v for k, v in b.items() if k != "allOf" and k not in ANNOTATIONS}
            parts = {}
            for i, x in enumerate(items):
                parts.setdefault(_canonical(x), ("allOf", i))
            if rest:
                parts.setdefault(_canonical(rest), ("rest", None))
            parts_of.append(parts)
        shared = set(parts_of[0]).intersection(*parts_of[1:])
        if not shared:
            return None
        key = (tuple(id(b) for b in subs), tuple(sorted(shared)))
        if key not in self._lifted:
            first = subs[0]
            # the shared part as it is written in the first branch (its $ref's target, if it is one)
            home, path = (homes[0], ()) if homes is not None else (loc, ("oneOf", 0))
            common = []
            for c in sorted(shared, key=lambda c: str(parts_of[0][c])):
                where, i = parts_of[0][c]
                if where == "allOf":
                    common.append(self.child(home, first["allOf"][i], *path, "allOf", i))
                else:
                    rest = {k: v for k, v in first.items() if k != "allOf" and k not in ANNOTATIONS}
                    common.append(self.child(home, rest, *path))
            reduced = []
            for b, parts in zip(subs, parts_of):
                items = b.get("allOf") if isinstance(b.get("allOf"), list) else []
                rest = {k: v for k, v in b.items() if k != "allOf" and k not in ANNOTATIONS}
                nb = dict(rest) if rest and _canonical(rest) not in shared else {}
                kept = [x for x in items if _canonical(x) not in shared]
                if kept:
                    nb["allOf"] = kept
                reduced.append(nb)
            self._lifted[key] = (common, reduced, subs)  # (subs: keeps their ids from being reused)
        common, reduced, _ = self._lifted[key]
        return list(common), reduced

    def _pure_ref_targets(self, loc: Loc, subs) -> list[Loc] | None:
        """The targets of branches that are all bare ``{"$ref": ...}`` into ``loc``'s own resource
        and dialect (``oneOf: [{$ref: A}, {$ref: B}]`` with A and B each ``allOf: [base, ...]``),
        so that a shared conjunct is found through them; None when any branch is not such a
        reference (the reduced branches are compiled with ``loc``'s resolver, which must also
        resolve what their targets refer to)."""
        if not all("$ref" in b and all(k == "$ref" or k in ANNOTATIONS for k in b) for b in subs):
            return None
        targets = []
        for i, b in enumerate(subs):
            r = self.child(loc, b, "oneOf", i)
            for _ in range(16):  # a chain of bare references
                if not (isinstance(r.schema, dict) and "$ref" in r.schema
                        and all(k == "$ref" or k in ANNOTATIONS for k in r.schema)):
                    break
                try:
                    r = self.resolve_ref(r, r.schema["$ref"], "$ref")
                except SchemaError:
                    return None
            if (str(r.resolver._base_uri) != str(loc.resolver._base_uri) or r.spec is not loc.spec
                    or not isinstance(r.schema, dict) or "$ref" in r.schema):
                return None
            targets.append(r)
        return targets

    def overlap_types(self, a: Conj, c: Conj) -> frozenset:
        """The JSON types on which ``a`` and ``c`` may both hold (conservative: a superset)."""
        if a.nt is not None or c.nt is not None:
            return frozenset() if self.disjoint(a, c) else (a.types & c.types if a.nt is None and c.nt is None
                                                              else frozenset(TYPES))
        if a.enum is not None or c.enum is not None:
            return frozenset() if self.disjoint(a, c) else a.types & c.types
        return frozenset(t for t in a.types & c.types if not self._type_disjoint(t, a, c))

    def _forbids_key(self, o: "ObjC", k: str) -> bool:
        """Provably no object satisfying ``o`` has key ``k`` (additionalProperties: false without a
        declaration or pattern for it; patterns are not matched here, so they make it unprovable)."""
        if k in o.forbidden:
            return True
        for g in o.groups:
            if k in g.props or g.patterns or g.additional is None:
                continue
            if any(isinstance(r, Loc) and r.schema is False for r in g.additional):
                return True
        return False

    def _no_key_allowed(self, o: "ObjC") -> bool:
        """Provably no key is allowed by every closed group of ``o`` (additionalProperties false:
        its declared keys and pattern keys): "a map keyed like 2x" against "a map keyed like en-GB",
        each with minProperties 1, in a oneOf."""
        closed = [g for g in o.groups if g.additional is not None
                  and any(isinstance(r, Loc) and r.schema is False for r in g.additional)]
        if not closed:
            return False
        langs = tuple(rx.alt(*(rx.literal(k) for k in sorted(g.props)), *(pre for pre, _ in g.patterns)) for g in closed)
        key = ("no-key", langs)
        if key not in self._emit_memo:
            try:
                self._emit_memo[key] = cpdfa.combination_is_empty(list(langs))
            except CompileBudgetError:
                self._emit_memo[key] = False
        return self._emit_memo[key]

    def disjoint(self, a: Conj, c: Conj) -> bool:
        """Provably no instance satisfies both (conservative; recursive schemas are followed to a
        bounded depth, past which "not provably disjoint")."""
        if self._disjoint_depth >= MAX_DISJOINT_DEPTH:
            return False
        self._disjoint_depth += 1
        try:
            return self._disjoint(a, c)
        finally:
            self._disjoint_depth -= 1

    def _disjoint(self, a: Conj, c: Conj) -> bool:
        if a.nt is not None or c.nt is not None:
            # the JSON types a recursive definition allows are known without inlining it
            # (inlining it inside its own normalization gives nothing back)
            ta = self._static_types(a.nt_refs) if a.nt is not None else self._conj_types(a)
            tc = self._static_types(c.nt_refs) if c.nt is not None else self._conj_types(c)
            if not ta & tc:
                return True
            try:
                xs, ys = self.inline(a), self.inline(c)
            except CompileBudgetError:
                return False
            if a.nt is not None and xs == [Conj()]:
                return False
            return all(self.disjoint(x, y) for x in xs for y in ys)
        common = a.types & c.types
        if not common:
            return True
        if a.enum is not None and c.enum is not None:
            keys_c = {json_key(w) for w in c.enum}
            shared = [v for v in a.enum if json_key(v) in keys_c]
            if len(shared) > MAX_SHARED_ENUM_CHECKS:
                return False
            # an enum narrowed by a sibling ("type" in a base definition's enum, each branch's
            # pattern picking one): the shared values must also hold both sides' other keywords
            return not any(self.value_allowed(v, a) and self.value_allowed(v, c) for v in shared)
        for e, other in ((a.enum, c), (c.enum, a)):
            if e is not None:
                if all(_value_excluded(v, other) for v in e if json_type(v) != "string") and \
                        self._strings_rejected([v for v in e if json_type(v) == "string"], other):
                    return True
        for t in common:
            if not self._type_disjoint(t, a, c):
                return False
        return True

    @staticmethod
    def _conj_types(c: Conj) -> frozenset:
        if c.enum is not None:
            return frozenset(json_type(v) for v in c.enum) & c.types
        return c.types

    def _static_types(self, refs) -> frozenset:
        """The JSON types every value of all of ``refs`` has, from ``type``/``const``/``enum``
        through ``$ref``/``allOf``/``anyOf``/``oneOf`` (a superset; negations allow every type)."""
        out = frozenset(TYPES)
        for r in refs:
            if isinstance(r, Loc):
                out &= self._loc_types(r, set())
        return out

    def _loc_types(self, loc: Loc, active: set) -> frozenset:
        key = ("static-types",) + loc.key()
        got = self._emit_memo.get(key)
        if got is not None:
            return got
        s = loc.schema
        if s is False:
            return frozenset()
        if not isinstance(s, dict) or key in active:
            return frozenset(TYPES)  # a cycle: no information from this path
        active.add(key)
        try:
            out = frozenset(TYPES)
            if "$ref" in s and self.draft_of(loc) <= 7:
                s = {"$ref": s["$ref"]}  # siblings of $ref are ignored before 2019-09
            t = s.get("type")
            if isinstance(t, str):
                t = [t]
            if isinstance(t, list) and all(x in TYPES or x == "integer" for x in t):
                out &= frozenset("number" if x == "integer" else x for x in t)
            if "const" in s:
                out &= {json_type(s["const"])}
            if isinstance(s.get("enum"), list):
                out &= frozenset(json_type(v) for v in s["enum"])
            subs = []
            if isinstance(s.get("$ref"), str):
                try:
                    subs.append([self.resolve_ref(loc, s["$ref"], "$ref")])
                except SchemaError:
                    pass
            for kw in ("allOf", "anyOf", "oneOf"):
                if isinstance(s.get(kw), list):
                    branches = [self.child(loc, x, kw, i) for i, x in enumerate(s[kw])]
                    subs.extend([[b] for b in branches] if kw == "allOf" else [branches])
            for alternatives in subs:  # each list: a union; the lists: an intersection
                union = frozenset()
                for b in alternatives:
                    union |= self._loc_types(b, active)
                out &= union
        finally:
            active.discard(key)
        if not active:  # results that met a cycle are a superset only where the cycle started
            self._emit_memo[key] = out
        return out

    def _strings_rejected(self, values: list, c: Conj) -> bool:
        """Provably ``c`` rejects each of these strings (an enum against a "not enum" pattern)."""
        if not values or "string" not in c.types:
            return True
        rest = [v for v in values if not _value_excluded(v, c)]
        if not rest:
            return True
        sc = c.str
        if not (sc.patterns or sc.negative or sc.min_len or sc.max_len is not None):
            return False
        key = ("str-rejected", tuple(rest), sc.patterns, sc.negative, sc.min_len, sc.max_len)
        if key not in self._emit_memo:
            length = [rx.repeat(rx.any_char(), sc.min_len, sc.max_len)] if sc.min_len or sc.max_len is not None else []
            try:
                self._emit_memo[key] = cpdfa.combination_is_empty(
                    list(sc.patterns) + length + [rx.alt(*(rx.literal(v) for v in rest))], list(sc.negative))
            except CompileBudgetError:
                self._emit_memo[key] = False
        return self._emit_memo[key]

    def _values_disjoint(self, va: list, vc: list) -> bool:
        """No value satisfies both conjunctions of schemas. Memoized: a product of many negated
        branches asks the same question of the same discriminator values again and again. A False
        found at the depth bound is only "not proved", so caching it is conservative."""
        key = ("values-disjoint",) + tuple(sorted((refs_key(va), refs_key(vc))))
        if key not in self._emit_memo:
            try:
                da, dc = self.normalize_refs(va), self.normalize_refs(vc)
                self._emit_memo[key] = all(self.disjoint(x, y) for x in da for y in dc)
            except CompileBudgetError:
                self._emit_memo[key] = False
        return self._emit_memo[key]

    def _type_disjoint(self, t: str, a: Conj, c: Conj) -> bool:
        if t == "null":
            return not (a.null_ok and c.null_ok)
        if t == "boolean":
            return not (a.bools & c.bools)
        if t == "number":
            n = a.num.merge(c.num)
            if n.lo is not None and n.hi is not None and (n.lo > n.hi or (n.lo == n.hi and (n.lo_strict or n.hi_strict))):
                return True
            return False
        if t == "object":
            # discriminator: a key required by either side (so present) whose values are disjoint
            oa, oc = a.obj, c.obj
            m = oa.merge(oc)
            if m.required & m.forbidden:
                return True
            if m.max_props is not None and (m.min_props > m.max_props or len(m.required) > m.max_props):
                return True
            if any(self._forbids_key(oc, k) for k in oa.required) or any(self._forbids_key(oa, k) for k in oc.required):
                return True
            if (m.min_props >= 1 or m.witnesses) and self._no_key_allowed(m):
                return True  # a member is needed, but closed objects on both sides allow no common key
            if self._disjoint_depth >= MAX_DISJOINT_DEPTH:
                return False  # (values of recursive schemas hold these values again: stop here)
            self._disjoint_depth += 1
            try:
                for k in sorted(oa.required | oc.required):
                    va = [r for g in oa.groups for r in g.props.get(k, ())]
                    vc = [r for g in oc.groups for r in g.props.get(k, ())]
                    if va and vc and self._values_disjoint(va, vc):
                        return True
            finally:
                self._disjoint_depth -= 1
            return False
        if t == "string":
            sa, sc = a.str, c.str
            m = sa.merge(sc)
            if m.max_len is not None and m.min_len > m.max_len:
                return True
            if sa.patterns and sc.patterns:
                # discriminating patterns ("^basic:integer:$" vs "^basic:decimal:$"): no string matches both
                key = ("str-disjoint", m.patterns, m.negative, m.excluded, m.min_len, m.max_len)
                if key not in self._emit_memo:
                    length = [rx.repeat(rx.any_char(), m.min_len, m.max_len)] if m.min_len or m.max_len is not None else []
                    try:
                        self._emit_memo[key] = cpdfa.combination_is_empty(
                            list(m.patterns) + length, list(m.negative) + [rx.literal(v) for v in m.excluded])
                    except CompileBudgetError:
                        self._emit_memo[key] = False
                return self._emit_memo[key]
            return False
        if t == "array":
            m = a.arr.merge(c.arr)
            return m.max_items is not None and m.min_items > m.max_items
        return False

    # ---------------------------------------------------------------- own keywords
    def own_conj(self, loc: Loc) -> Conj:
        s = loc.schema
        d = self.draft_of(loc)
        c = Conj(origins=(loc,))
        p = loc.pointer
        if "type" in s:
            t = s["type"]
            ts = t if isinstance(t, list) else [t]
            allowed = set()
            integer = False
            for x in ts:
                if x == "integer":
                    allowed.add("number")
                    integer = True
                elif x in TYPES:
                    allowed.add(x)
                elif x == "any" and d <= 3:
                    allowed |= set(TYPES)
                else:
                    raise SchemaError(f"unknown type {x!r}", p + "/type")
            if integer and "number" in ts:
                integer = False
            c.types = frozenset(allowed)
            c.num = replace(c.num, integer=integer, int_zero_fraction=not integer or d >= 6)
        if "enum" in s:
            if not isinstance(s["enum"], list):
                raise SchemaError("enum must be an array", p + "/enum")
            c.enum = tuple(s["enum"])
        if "const" in s and d >= 6:
            c.enum = (s["const"],) if c.enum is None else tuple(v for v in c.enum if json_equal(v, s["const"]))
        # numbers
        n = c.num
        if "minimum" in s:
            strict = bool(s.get("exclusiveMinimum")) if d <= 4 else False
            n = n.merge(NumC(lo=_dec(s["minimum"], p + "/minimum"), lo_strict=strict))
        if "maximum" in s:
            strict = bool(s.get("exclusiveMaximum")) if d <= 4 else False
            n = n.merge(NumC(hi=_dec(s["maximum"], p + "/maximum"), hi_strict=strict))
        if d >= 6:
            if "exclusiveMinimum" in s:
                n = n.merge(NumC(lo=_dec(s["exclusiveMinimum"], p), lo_strict=True))
            if "exclusiveMaximum" in s:
                n = n.merge(NumC(hi=_dec(s["exclusiveMaximum"], p), hi_strict=True))
        if "multipleOf" in s:
            m = _dec(s["multipleOf"], p + "/multipleOf")
            if m <= 0:
                raise SchemaError("multipleOf must be > 0", p + "/multipleOf")
            n = replace(n, multiple_of=n.multiple_of + ((m, p),))
        c.num = n
        # strings
        sc = c.str
        if "minLength" in s:
            sc = replace(sc, min_len=_nonneg(s["minLength"], p + "/minLength"))
        if "maxLength" in s:
            sc = replace(sc, max_len=_nonneg(s["maxLength"], p + "/maxLength"))
        if "pattern" in s:
            parts = self.pattern_parts(s["pattern"], p, "pattern")
            if parts is not None:
                sc = replace(sc, patterns=sc.patterns + tuple(parts[0]), negative=sc.negative + tuple(parts[1]))
        if s.get("contentEncoding") == "base64" and d == 7 and self.opt.format_assert:
            sc = replace(sc, patterns=sc.patterns + (BASE64,), raw_only=True)
        if "format" in s and isinstance(s["format"], str) and self.opt.format_assert:
            f = s["format"]
            r = st.format_regex(f, self.opt.exact_leap_seconds)
            if r is not None:
                sc = replace(sc, patterns=sc.patterns + (r,), raw_only=sc.raw_only or f in st.ASCII_FORMATS)
            elif f == "hostname" and d <= 6:  # RFC 1034 without IDNA: a regular language
                sc = replace(sc, patterns=sc.patterns + (st.hostname_rfc1034(),), raw_only=True,
                             max_len=st.HOSTNAME_MAX_LENGTH if sc.max_len is None
                             else min(sc.max_len, st.HOSTNAME_MAX_LENGTH))
            elif f in st.KNOWN_UNSUPPORTED_FORMATS:
                why = " (from draft 7 on it admits Punycode A-labels that must decode to valid IDNA)" \
                    if f == "hostname" else ""
                self.unsupported(p, "format", f"format {f!r} is not compiled{why}")
        c.str = sc
        # arrays
        a = ArrC(pointer=p)
        prefix, items = (), None
        if d >= 2020:
            if "prefixItems" in s:
                prefix = tuple([self.child(loc, x, "prefixItems", i)] for i, x in enumerate(_list(s["prefixItems"], loc, "prefixItems")))
            if "items" in s:
                items = (self.child(loc, s["items"], "items"),)
        else:
            if isinstance(s.get("items"), list):
                prefix = tuple([self.child(loc, x, "items", i)] for i, x in enumerate(s["items"]))
                if "additionalItems" in s:
                    items = (self.child(loc, s["additionalItems"], "additionalItems"),)
            elif "items" in s:
                items = (self.child(loc, s["items"], "items"),)
        if prefix or items is not None:
            a = replace(a, groups=((prefix, items),))
        if "minItems" in s:
            a = replace(a, min_items=_nonneg(s["minItems"], p + "/minItems"))
        if "maxItems" in s:
            a = replace(a, max_items=_nonneg(s["maxItems"], p + "/maxItems"))
        if "contains" in s and d >= 6:
            lo = _nonneg(s.get("minContains", 1), p) if d >= 2019 else 1
            hi = _nonneg(s["maxContains"], p) if d >= 2019 and "maxContains" in s else None
            a = replace(a, contains=((self.child(loc, s["contains"], "contains"), lo, hi, p),))
        if s.get("uniqueItems") is True:
            a = replace(a, unique=True)
        c.arr = a
        # objects
        o = ObjC(pointer=p)
        props = {}
        if "properties" in s:
            if not isinstance(s["properties"], dict):
                raise SchemaError("properties must be an object", p + "/properties")
            props = {k: (self.child(loc, v, "properties", k),) for k, v in s["properties"].items()}
        pats = ()
        if "patternProperties" in s:
            out = []
            for pat, sub in s["patternProperties"].items():
                r = self.pattern_regex(pat, p + "/patternProperties", "patternProperties")
                if r is None:
                    continue  # reported; lenient: this pattern's schema is dropped (looser)
                out.append((r, (self.child(loc, sub, "patternProperties", pat),)))
            pats = tuple(out)
        additional = None
        if "additionalProperties" in s:
            additional = (self.child(loc, s["additionalProperties"], "additionalProperties"),)
        elif self.opt.strict_properties and (props or pats):
            additional = (Loc(False, loc.resolver, p + "/additionalProperties", "#false", loc.spec),)
        if props or pats or additional is not None:
            o = replace(o, groups=(ObjGroup(props, pats, additional),))
        if "required" in s:
            req = s["required"]
            if isinstance(req, list):
                o = replace(o, required=frozenset(req), required_order=tuple(req))
            elif d <= 3:
                pass
            else:
                raise SchemaError("required must be an array", p + "/required")
        if "minProperties" in s:
            o = replace(o, min_props=_nonneg(s["minProperties"], p))
        if "maxProperties" in s:
            o = replace(o, max_props=_nonneg(s["maxProperties"], p))
        if "propertyNames" in s and d >= 6:
            o = replace(o, names=(self.child(loc, s["propertyNames"], "propertyNames"),))
        deps = []
        if d >= 2019 and isinstance(s.get("dependentRequired"), dict):
            deps += [(k, frozenset(v)) for k, v in s["dependentRequired"].items()]
        if isinstance(s.get("dependencies"), dict):
            deps += [(k, frozenset(v)) for k, v in s["dependencies"].items() if isinstance(v, list)]
        if deps:
            o = replace(o, dep_required=tuple(deps))
        c.obj = o
        if d == 7:  # draft 7 lets validators assert these; they are unknown before, annotations after
            if s.get("contentEncoding") == "base64" and self.opt.format_assert:
                pass  # asserted with the string records (BASE64)
            elif "contentEncoding" in s:
                self.unsupported(p, "contentEncoding", "content assertions are not compiled")
            if "contentMediaType" in s:
                self.unsupported(p, "contentMediaType", "content assertions are not compiled")
        if "unevaluatedProperties" in s and d >= 2019 and "additionalProperties" not in s \
                and self._has_in_place_applicators(s, "unevaluatedProperties"):
            self._unevaluated_over_applicators(loc, c)
        for kw in ("unevaluatedProperties", "unevaluatedItems"):
            if kw == "unevaluatedProperties" and self._has_in_place_applicators(s, kw):
                continue  # (above)
            if kw in s and d >= 2019 and self._unevaluated(loc, kw):
                sub = self.child(loc, s[kw], kw)
                if kw == "unevaluatedProperties" and "additionalProperties" not in s:
                    g = o.groups[0] if o.groups else ObjGroup({}, (), None)
                    c.obj = replace(o, groups=(ObjGroup(g.props, g.patterns, (sub,)),))
                elif kw == "unevaluatedItems":
                    prefix, items = a.groups[0] if a.groups else ((), None)
                    if items is None:
                        c.arr = replace(c.arr, groups=((prefix, (sub,)),))
        return c

    @staticmethod
    def _has_in_place_applicators(s: dict, kw: str) -> bool:
        applicators = {"allOf", "anyOf", "oneOf", "not", "if", "$ref", "dependentSchemas", "$dynamicRef", "$recursiveRef"}
        if kw == "unevaluatedItems":
            applicators.add("contains")
        sub = s.get(kw)
        return sub is not True and sub != {} and bool(applicators & set(s))

    def _unevaluated_over_applicators(self, loc: Loc, c: "Conj") -> None:
        """unevaluatedProperties beside in-place applicators whose evaluated keys do not depend on
        the instance: those always applied (allOf, $ref) add what they evaluate; the others (anyOf,
        oneOf, if/then/else, dependentSchemas) may only evaluate keys already in that set, and
        ``not`` evaluates nothing. Then "unevaluated" is "not among these names and patterns": a
        group of its own whose additional schema is the keyword's. A subschema applied in place
        that has additionalProperties (or its own unevaluatedProperties) evaluates every key, and
        the keyword is then moot. Anything else is reported."""
        s = loc.schema
        evaluated = self._evaluated_keys(loc, frozenset(), top=True)
        if evaluated is None:
            self.unsupported(loc.pointer, "unevaluatedProperties",
                             "unevaluatedProperties over applicators whose evaluated keys depend on the instance is not compiled")
            return
        names, patterns, everything = evaluated
        if everything:
            return
        sub = self.child(loc, s["unevaluatedProperties"], "unevaluatedProperties")
        group = ObjGroup({k: () for k in sorted(names)}, tuple((r, ()) for r in patterns), (sub,))
        c.obj = replace(c.obj, groups=tuple(c.obj.groups) + (group,))

    def _evaluated_keys(self, loc: Loc, seen: frozenset, top: bool = False):
        """(names, pattern regexes, everything) that ``loc`` evaluates on any instance it accepts,
        or None when that depends on the instance (or on a cycle of in-place references)."""
        s = loc.schema
        if not isinstance(s, dict):
            return frozenset(), (), False  # true evaluates nothing; false accepts nothing
        if loc.key() in seen:
            return None
        seen = seen | {loc.key()}
        d = self.draft_of(loc)
        if "additionalProperties" in s or (not top and "unevaluatedProperties" in s):
            return frozenset(), (), True
        names = set(s["properties"]) if isinstance(s.get("properties"), dict) else set()
        patterns = []
        for pat in (s["patternProperties"] if isinstance(s.get("patternProperties"), dict) else {}):
            r = self.pattern_regex(pat, loc.pointer + "/patternProperties", "patternProperties")
            if r is None:
                return None
            patterns.append(r)
        always = [self.child(loc, sub, "allOf", i) for i, sub in enumerate(s["allOf"])] \
            if isinstance(s.get("allOf"), list) else []
        if "$ref" in s:
            always.append(self.resolve_ref(loc, s["$ref"], "$ref"))
        if d <= 7 and "$ref" in s:
            always, names, patterns = always[-1:], set(), []  # siblings of $ref are ignored there
        for kw in ("$dynamicRef", "$recursiveRef"):
            if kw in s:
                target = self._static_dynamic_target(loc, kw, s[kw])
                if target is None:
                    return None
                always.append(target)
        for sub in always:
            e = self._evaluated_keys(sub, seen)
            if e is None:
                return None
            if e[2]:
                return frozenset(), (), True
            names |= e[0]
            patterns += [r for r in e[1] if r not in patterns]
        maybe = []
        for kw in ("anyOf", "oneOf"):
            if isinstance(s.get(kw), list):
                maybe += [self.child(loc, sub, kw, i) for i, sub in enumerate(s[kw])]
        for kw in ("if", "then", "else"):
            if kw in s and d >= 7:
                maybe.append(self.child(loc, s[kw], kw))
        for kw in ("dependentSchemas", "dependencies"):
            if isinstance(s.get(kw), dict):
                maybe += [self.child(loc, sub, kw, k) for k, sub in s[kw].items() if not isinstance(sub, list)]
        for sub in maybe:
            e = self._evaluated_keys(sub, seen)
            if e is None or e[2] or not e[0] <= names or any(r not in patterns for r in e[1]):
                return None
        return frozenset(names), tuple(patterns), False

    def _unevaluated(self, loc: Loc, kw: str) -> bool:
        """True when unevaluated* equals additional*/items here (no in-place applicator can evaluate more)."""
        s = loc.schema
        sub = s[kw]
        if sub is True or sub == {}:
            return False
        applicators = {"allOf", "anyOf", "oneOf", "not", "if", "$ref", "dependentSchemas", "$dynamicRef", "$recursiveRef"}
        if kw == "unevaluatedItems":
            applicators.add("contains")  # contains evaluates the items it matches (2020-12)
        if not (applicators & set(s)):
            return True
        self.unsupported(loc.pointer, kw, "unevaluated* with in-place applicators is not compiled")
        return False

    def pattern_parts(self, pattern, pointer: str, keyword: str) -> tuple[list, list] | None:
        """(positives, negatives): the strings containing a match are in every positive and in no
        negative (leading lookaheads become automaton intersections); None when not compiled."""
        if not isinstance(pattern, str):
            raise SchemaError("pattern must be a string", pointer)
        from corral.grammars.regex_parser import search_regex_parts
        try:
            return search_regex_parts(pattern, flavor="ecmascript")
        except GrammarError as e:
            if e.construct != "lookahead":
                self.unsupported(pointer, keyword, f"regex {pattern!r}: {e}")
                return None
        from corral.grammars.json_schema.lookahead import search_language
        try:  # lookaheads past the pattern's start: by automaton, reading the pattern right to left
            d = search_language(pattern, flavor="ecmascript")
        except GrammarError as e:
            self.unsupported(pointer, keyword, f"regex {pattern!r}: {e}")
            return None
        r = d.to_regex(max_nodes=3000)
        return [d if r is None else r], []

    def pattern_regex(self, pattern, pointer: str, keyword: str) -> rx.Regex | None:
        """One regex for ``pattern`` (key regions need one): lookahead parts are combined by
        automaton and turned back into a regex when that stays small."""
        parts = self.pattern_parts(pattern, pointer, keyword)
        if parts is None:
            return None
        positives, negatives = parts
        if len(positives) == 1 and not negatives and not isinstance(positives[0], cpdfa.Dfa):
            return positives[0]
        try:
            r = cpdfa.combine(positives, negatives).to_regex(max_nodes=3000)
        except CompileBudgetError:
            r = None
        if r is None:
            self.unsupported(pointer, keyword, f"regex {pattern!r}: its lookaheads make too large an automaton")
        return r

    # ---------------------------------------------------------------- finite values
    def finite_values(self, loc: Loc) -> list[Conj] | None:
        """A schema with combinators whose own enum/const (or that of a plain allOf member) lists its
        candidates: the valid values are those candidates the whole schema accepts, decided by
        validating each one (so a keyword the compiler cannot build, e.g. ``not: {multipleOf:
        0.123456789}`` beside ``enum: [1e308]``, costs nothing). Only for schemas without ``$ref`` or
        ``format`` anywhere inside, so the validator sees everything and checks nothing loosely."""
        s = loc.schema
        if not isinstance(s, dict) or not (COMBINATORS & s.keys() or "if" in s):
            return None
        d = self.draft_of(loc)
        members = [s] + [m for m in s.get("allOf", []) if isinstance(m, dict)] if isinstance(s.get("allOf", []), list) else [s]
        candidates = None
        for m in members:
            values = None
            if isinstance(m.get("enum"), list):
                values = list(m["enum"])
            if "const" in m and d >= 6:
                values = [m["const"]] if values is None else [v for v in values if json_equal(v, m["const"])]
            if values is not None:
                keys = {json_key(w) for w in values}
                candidates = values if candidates is None else [v for v in candidates if json_key(v) in keys]
        if candidates is None or len(candidates) > MAX_FINITE_CANDIDATES or _mentions(s, ("$ref", "format", "$dynamicRef",
                                                                                            "$recursiveRef")):
            return None
        valid = [v for v in json_unique(candidates) if self._validate(loc, v)]
        return [Conj(enum=tuple(valid), origins=(loc,))] if valid else []

    # ---------------------------------------------------------------- string algebra
    def string_algebra(self, r) -> list[Conj] | None:
        """A schema made only of string assertions (pattern, minLength, maxLength, type, string
        const/enum) under allOf/anyOf/oneOf/not/$ref denotes a set of strings plus a set of
        unconstrained other types. Its strings are one code-point automaton built by Boolean
        operations (product, complement), where the DNF would multiply alternatives: three negated
        anyOfs of three negated anyOfs of patterns expand to 9^3 conjunctions. Returns None (the DNF
        path decides) when the schema has another keyword, no combinator, or the automaton exceeds
        its budget."""
        loc, negated = (r.loc, True) if isinstance(r, NegLoc) else (r, False)
        if isinstance(r, NegLoc) and r.only is not None:
            return None
        s = loc.schema
        if not isinstance(s, dict) or not (COMBINATORS & s.keys()):
            return None
        tree = self._string_tree(loc, [])
        if tree is None:
            return None
        if negated:
            tree = ("not", tree)
        # memoized by the tree: a $ref'd string schema (cityjson's 41-node one) is met again at
        # every use, and each evaluation is dozens of products (172 evaluations were 90 of its 98 s)
        key = ("string-algebra", tree)
        if key not in self._emit_memo:
            regexes: list = []
            _tree_regexes(tree, regexes)
            atoms = cpdfa.Atoms(regexes + [rx.any_char()])
            try:
                self._emit_memo[key] = _eval_string_tree(tree, atoms)
            except CompileBudgetError:
                self._emit_memo[key] = None
        if self._emit_memo[key] is None:
            return None
        others, strings = self._emit_memo[key]
        types = set(others)
        if not strings.is_empty():
            types.add("string")
        if not types:
            return []
        every = len(strings.trans) == 1 and strings.accept[0]
        string_c = StrC() if every or "string" not in types else StrC(patterns=(strings,))
        return [Conj(types=frozenset(types), str=string_c, origins=(r,))]

    def _string_tree(self, loc: Loc, stack: list):
        """The Boolean expression of a pure string schema (see string_algebra), or None."""
        s = loc.schema
        if s is True:
            return ("and", ())
        if s is False:
            return ("or", ())
        if not isinstance(s, dict) or loc.key() in stack or len(stack) > 32:
            return None
        d = self.draft_of(loc)
        stack = stack + [loc.key()]
        if "$ref" in s and d <= 7:  # siblings of $ref are ignored before 2019-09
            return self._string_tree(self.resolve_ref(loc, s["$ref"], "$ref"), stack)
        parts = []
        for kw, v in s.items():
            if kw not in VALIDATION_KEYWORDS:
                continue  # annotations and unknown keywords
            if kw == "type":
                names = v if isinstance(v, list) else [v]
                if not all(isinstance(t, str) and t in TYPES and t != "integer" for t in names):
                    return None
                parts.append(("types", frozenset(names) - {"string"}, "string" in names))
            elif kw in ("minLength", "maxLength"):
                n = _nonneg(v, f"{loc.pointer}/{kw}")
                if n > MAX_ALGEBRA_LENGTH:
                    return None
                length = rx.repeat(rx.any_char(), n, None) if kw == "minLength" else rx.repeat(rx.any_char(), 0, n)
                parts.append(("str", length))
            elif kw == "pattern":
                if not isinstance(v, str):
                    return None
                from corral.grammars.regex_parser import search_regex_parts
                try:
                    positives, negatives = search_regex_parts(v, flavor="ecmascript")
                except GrammarError:
                    return None
                parts.extend(("str", x) for x in positives)
                parts.extend(("not-str", x) for x in negatives)
            elif kw in ("const", "enum"):
                values = [v] if kw == "const" else v
                if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
                    return None
                parts.append(("lits", tuple(values)))
            elif kw in ("allOf", "anyOf", "oneOf"):
                subs = []
                for i, sub in enumerate(_list(v, loc, kw)):
                    t = self._string_tree(self.child(loc, sub, kw, i), stack)
                    if t is None:
                        return None
                    subs.append(t)
                parts.append(({"allOf": "and", "anyOf": "or", "oneOf": "one"}[kw], tuple(subs)))
            elif kw == "not":
                t = self._string_tree(self.child(loc, v, "not"), stack)
                if t is None:
                    return None
                parts.append(("not", t))
            elif kw == "$ref":
                t = self._string_tree(self.resolve_ref(loc, v, "$ref"), stack)
                if t is None:
                    return None
                parts.append(t)
            else:
                return None
        return ("and", tuple(parts))

    # ---------------------------------------------------------------- negation
    def negate(self, loc: Loc, only: frozenset | None = None) -> list[Conj]:
        out = self._negate(loc, only)
        if only is not None:
            out = self.product(out, [Conj(types=only)])
        # records built here stand for "not loc": finite values are validated against the negation
        neg = NegLoc(loc)
        return [replace(c, origins=tuple(neg if o is loc else o for o in c.origins)) if c.nt is None else c
                for c in out]

    def _negate_tagged_union(self, loc: Loc, kids: list) -> list[Conj] | None:
        """The negation of a union of object schemas told apart by one required key ("type": one
        enum per branch), or None when the branches are not such a union. Negating each branch and
        intersecting the negations multiplies their alternatives (15 branches of a trigger list:
        past the 4,096 budget); with a tag key k whose allowed values no two branches share:

            not (S_1 or ... or S_n) == not an object, or k absent, or k's value in no V_i,
                                       or OR_i (k's value in V_i and not S_i)

        exact, because a value of k in V_i rules out every other branch. Being disjoint, the
        branches also never hold two at a time, so this negates their oneOf as well."""
        if len(kids) < MIN_TAGGED_UNION:
            return None
        try:  # (the general negation below may still fit where the branches themselves do not)
            branches = [self.normalize(k) for k in kids]
        except CompileBudgetError:
            return None
        obj_only = frozenset(["object"])
        if not all(b and all(x.nt is None and x.enum is None and x.types == obj_only for x in b) for b in branches):
            return None
        tags = frozenset.intersection(*(x.obj.required for b in branches for x in b))
        for tag in sorted(tags):
            values = [[[r for g in x.obj.groups for r in g.props.get(tag, ())] for x in b] for b in branches]
            if any(len(v) != 1 or not isinstance(v[0], Loc) for vb in values for v in vb):
                continue
            if all(self._values_disjoint(va, vc) for i in range(len(kids)) for j in range(i + 1, len(kids))
                   for va in values[i] for vc in values[j]):
                break
        else:
            return None

        def tagged(refs) -> Conj:
            return Conj(types=obj_only, obj=ObjC(required=frozenset([tag]), groups=(ObjGroup({tag: refs}, (), None),)),
                        origins=(loc,))

        out = [Conj(types=frozenset(TYPES) - obj_only, origins=(loc,)),
               Conj(types=obj_only, obj=ObjC(forbidden=frozenset([tag])), origins=(loc,)),
               tagged(self._outside_all([v[0] for vb in values for v in vb], loc))]
        for kid, vb in zip(kids, values):
            out.extend(self.product([tagged((v[0],)) for v in vb], self.normalize(NegLoc(kid))))
        return out

    def _outside_all(self, refs: list, loc: Loc) -> tuple:
        """Value refs for "none of ``refs`` holds". Tags are finite (an enum or const each): then
        one synthetic ``enum`` of their values, negated once; negating each and intersecting the
        negations costs a product per disjointness test (0.3-0.5 s for 15 tags)."""
        values = []
        for r in refs:
            for c in self.normalize(r):
                if c.nt is not None or c.enum is None:
                    return tuple(NegLoc(r) for r in refs)
                values.extend(v for v in c.enum if self.value_allowed(v, c))
        return (NegLoc(self._synthetic_enum(values, loc)),)

    def _negate(self, loc: Loc, only: frozenset | None = None) -> list[Conj]:
        s = loc.schema
        if s is True:
            return []
        if s is False:
            return [Conj(origins=(loc,))]
        if not isinstance(s, dict):
            raise SchemaError("a schema must be an object or a boolean", loc.pointer)
        keys = {k for k in s if k not in ANNOTATIONS}
        if only is not None:  # keywords of other types hold vacuously on the types asked for
            keys = {k for k in keys if KEYWORD_TYPE.get(k, None) is None or KEYWORD_TYPE[k] in only}
            if not keys:
                return []
        if not keys:
            return []
        d = self.draft_of(loc)
        if "$ref" in keys and (len(keys) == 1 or d <= 7):  # draft <= 7: $ref hides its siblings
            target = self.resolve_ref(loc, s["$ref"], "$ref")
            return self.negate(target, only)
        out: list[Conj] = []
        p = loc.pointer
        handled = set()
        member_alts: list = []  # some member violates properties / patternProperties / ...
        if "$ref" in keys:  # not (S and ref) == not S or not ref
            handled.add("$ref")
            out.extend(self.negate(self.resolve_ref(loc, s["$ref"], "$ref"), only))
        if "format" in keys and isinstance(s["format"], str) and self.opt.format_assert:
            f = s["format"]
            r = st.format_regex(f, self.opt.exact_leap_seconds)
            if r is not None:
                handled.add("format")
                out.append(Conj(types=frozenset(["string"]), str=StrC(negative=(r,)), origins=(loc,)))
            elif f == "hostname" and d <= 6:  # not RFC 1034's labels, or longer than a hostname may be
                handled.add("format")
                out.append(Conj(types=frozenset(["string"]), str=StrC(negative=(st.hostname_rfc1034(),)),
                                origins=(loc,)))
                out.append(Conj(types=frozenset(["string"]), str=StrC(min_len=st.HOSTNAME_MAX_LENGTH + 1),
                                origins=(loc,)))
            elif f not in st.KNOWN_UNSUPPORTED_FORMATS:
                handled.add("format")  # an unknown format asserts nothing: its negation excludes nothing
        if "contains" in keys and d >= 6:  # fewer than minContains or more than maxContains matches
            lo = _nonneg(s.get("minContains", 1), p) if d >= 2019 else 1
            hi = _nonneg(s["maxContains"], p) if d >= 2019 and "maxContains" in s else None
            child = self.child(loc, s["contains"], "contains")
            if lo > 0:
                out.append(Conj(types=frozenset(["array"]), arr=ArrC(contains=((child, 0, lo - 1, p),), pointer=p),
                                origins=(loc,)))
            if hi is not None:
                out.append(Conj(types=frozenset(["array"]), arr=ArrC(contains=((child, hi + 1, None, p),), pointer=p),
                                origins=(loc,)))
        handled |= {"contains", "minContains", "maxContains"} & keys  # without contains: no assertion
        for kw in ("dependencies", "dependentRequired", "dependentSchemas"):
            if kw not in keys:
                continue
            handled.add(kw)
            if not isinstance(s[kw], dict) or (kw != "dependencies" and d < 2019):
                continue
            for k, dep in s[kw].items():  # k present and the dependency broken
                has_k = Conj(types=frozenset(["object"]), obj=ObjC(required=frozenset([k])), origins=(loc,))
                if isinstance(dep, list):
                    for x in dep:
                        out.append(Conj(types=frozenset(["object"]), obj=ObjC(required=frozenset([k]),
                                                                             forbidden=frozenset([x])), origins=(loc,)))
                else:
                    out.extend(self.product([has_k], self.normalize(NegLoc(self.child(loc, dep, kw, k)))))
        if "not" in keys:
            handled.add("not")  # not(not S) == S
            out.extend(self.normalize(self.child(loc, s["not"], "not")))
        # type
        if "type" in keys:
            handled.add("type")
            c = self.own_conj(Loc({"type": s["type"]}, loc.resolver, p, loc.base, loc.spec))
            rest = frozenset(TYPES) - c.types
            out.append(Conj(types=rest, origins=(loc,)))
            if c.num.integer:
                # non-integral numbers, in plain decimal spelling (exponent forms: spelling policy)
                fractional = rx.seq(rx.optional(rx.literal("-")), num.UINT, rx.literal("."), num.DIGITS)
                integral = num.integer_range(None, None, zero_fraction=d >= 6)
                out.append(Conj(types=frozenset(["number"]), num=NumC(positive=(fractional,), negative=(integral,)),
                                origins=(loc,)))
        if "enum" in keys or ("const" in keys and d >= 6):
            values = list(s.get("enum", [])) if "enum" in keys else []
            if "const" in keys and d >= 6:
                values = [s["const"]] if "enum" not in keys else [v for v in values if json_equal(v, s["const"])]
            handled |= {"enum", "const"}
            out.extend(self._exclude_values(values, loc, only))
        props = s["properties"] if "properties" in keys and isinstance(s["properties"], dict) else {}
        required = s["required"] if "required" in keys and isinstance(s["required"], list) else []
        if "required" in keys and isinstance(s["required"], list):
            handled.add("required")
            for k in required:
                child = self.child(loc, props[k], "properties", k) if k in props else None
                if child is not None and not _is_true_refs((child,)):
                    # "k absent, or k's value breaks S_k" is one member constraint ("if k is
                    # present, its value is not S_k"): "exactly one of these keys" oneOfs then
                    # stay one alternative per branch instead of 2**n
                    out.append(Conj(types=frozenset(["object"]), obj=ObjC(
                        groups=(ObjGroup({k: (NegLoc(child),)}, (), None),)), origins=(loc,)))
                else:
                    out.append(Conj(types=frozenset(["object"]), obj=ObjC(forbidden=frozenset([k])), origins=(loc,)))
        if "properties" in keys and isinstance(s["properties"], dict):
            handled.add("properties")
            for k, sub in props.items():
                child = self.child(loc, sub, "properties", k)
                if k not in required and not _is_true_refs((child,)):
                    member_alts.append(((rx.literal(k),), (), (NegLoc(child),), k))
        any_key = rx.star(rx.any_char())
        pattern_res = []
        for pat, sub in (s.get("patternProperties") or {}).items() if isinstance(s.get("patternProperties"), dict) else ():
            pattern_res.append((self.pattern_regex(pat, p + "/patternProperties", "patternProperties"), pat, sub))
        if "patternProperties" in keys and isinstance(s["patternProperties"], dict):
            handled.add("patternProperties")
            for r, pat, sub in pattern_res:
                child = self.child(loc, sub, "patternProperties", pat)
                if r is not None and not _is_true_refs((child,)):
                    member_alts.append(((r,), (), (NegLoc(child),), None))
        if "additionalProperties" in keys:
            handled.add("additionalProperties")
            child = self.child(loc, s["additionalProperties"], "additionalProperties")
            if not _is_true_refs((child,)) and all(r is not None for r, _, _ in pattern_res):
                props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
                outside = tuple(rx.literal(k) for k in props) + tuple(r for r, _, _ in pattern_res)
                member_alts.append(((any_key,), outside, (NegLoc(child),), None))
        if "propertyNames" in keys and d >= 6:
            handled.add("propertyNames")
            child = self.child(loc, s["propertyNames"], "propertyNames")
            if not _is_true_refs((child,)):
                names = self._names_regex(self.normalize(child), p + "/propertyNames")
                member_alts.append(((any_key,), (names,) if names is not None else (), (), None))
        if len(member_alts) == 1 and member_alts[0][3] is not None and not member_alts[0][1]:
            # "key k present with a value outside S_k": a required key and a value constraint, no
            # witness (if/then chains over one discriminator negate many of these on one object)
            (_, _, value_refs, k), = member_alts
            out.append(Conj(types=frozenset(["object"]), obj=ObjC(
                required=frozenset([k]), groups=(ObjGroup({k: value_refs}, (), None),)), origins=(loc,)))
        elif member_alts:
            out.append(Conj(types=frozenset(["object"]), obj=ObjC(witnesses=(tuple(member_alts),)), origins=(loc,)))
        if "anyOf" in keys:
            handled.add("anyOf")
            kids = [self.child(loc, sub, "anyOf", i) for i, sub in enumerate(_list(s["anyOf"], loc, "anyOf"))]
            tagged = self._negate_tagged_union(loc, kids)
            if tagged is not None:
                out.extend(tagged)
            else:
                dnf = [Conj()]
                for k in kids:
                    dnf = self.product(dnf, self.normalize(NegLoc(k, only)))
                out.extend(dnf)
        if "allOf" in keys:
            handled.add("allOf")
            for i, sub in enumerate(_list(s["allOf"], loc, "allOf")):
                out.extend(self.normalize(NegLoc(self.child(loc, sub, "allOf", i), only)))
        if "oneOf" in keys:  # not exactly one: none holds, or some two hold
            handled.add("oneOf")
            kids = [self.child(loc, sub, "oneOf", i) for i, sub in enumerate(_list(s["oneOf"], loc, "oneOf"))]
            tagged = self._negate_tagged_union(loc, kids)
            if tagged is not None:  # (the branches exclude each other: "two hold" is empty)
                out.extend(tagged)
            else:
                dnf = [Conj()]
                for k in kids:
                    dnf = self.product(dnf, self.normalize(NegLoc(k, only)))
                out.extend(dnf)
                for i in range(len(kids)):
                    for j in range(i + 1, len(kids)):
                        out.extend(self.product(self.normalize(kids[i]), self.normalize(kids[j])))
        items = s.get("items")
        if "items" in keys and isinstance(items, (dict, bool)) and not ("prefixItems" in s and d >= 2020):
            # some element violates the (single) items schema: contains(not items)
            handled |= {"items", "additionalItems"}  # additionalItems is inert next to schema-form items
            neg = NegLoc(self.child(loc, items, "items"))
            out.append(Conj(types=frozenset(["array"]), arr=ArrC(contains=((neg, 1, None, p),), pointer=p),
                            origins=(loc,)))
        if "pattern" in keys:
            handled.add("pattern")
            parts = self.pattern_parts(s["pattern"], p, "pattern")
            if parts is not None:  # not (all positives and no negative): one positive fails or a negative holds
                out.extend(Conj(types=frozenset(["string"]), str=StrC(negative=(r,)), origins=(loc,)) for r in parts[0])
                out.extend(Conj(types=frozenset(["string"]), str=StrC(patterns=(r,)), origins=(loc,)) for r in parts[1])
        for kw, lo_kw in (("minimum", True), ("maximum", False), ("exclusiveMinimum", True), ("exclusiveMaximum", False)):
            if kw in keys and (d >= 6 or kw in ("minimum", "maximum")):
                handled.add(kw)
                if d <= 4 and kw in ("minimum", "maximum"):
                    strict = bool(s.get("exclusive" + kw.capitalize()))
                    handled.add("exclusive" + kw.capitalize())
                else:
                    strict = kw.startswith("exclusive")
                v = _dec(s[kw], p)
                if lo_kw:  # not (x >= v) == x < v
                    out.append(Conj(types=frozenset(["number"]), num=NumC(hi=v, hi_strict=not strict), origins=(loc,)))
                else:
                    out.append(Conj(types=frozenset(["number"]), num=NumC(lo=v, lo_strict=not strict), origins=(loc,)))
        if "multipleOf" in keys:
            handled.add("multipleOf")
            m = _dec(s["multipleOf"], p)
            multiples = _multiple_dfa_regex(m) if m > 0 else None
            if multiples is None:
                self.unsupported(p, "multipleOf", "negation of this multipleOf is not compiled")
            else:
                plain = rx.seq(rx.optional(rx.literal("-")), num.UINT, rx.optional(rx.seq(rx.literal("."), num.DIGITS)))
                out.append(Conj(types=frozenset(["number"]), num=NumC(positive=(plain,), negative=(multiples,)), origins=(loc,)))
        if "minLength" in keys:
            handled.add("minLength")
            m = _nonneg(s["minLength"], p)
            if m == 0:
                pass
            else:
                out.append(Conj(types=frozenset(["string"]), str=StrC(max_len=m - 1), origins=(loc,)))
        if "maxLength" in keys:
            handled.add("maxLength")
            out.append(Conj(types=frozenset(["string"]), str=StrC(min_len=_nonneg(s["maxLength"], p) + 1), origins=(loc,)))
        if "minItems" in keys:
            handled.add("minItems")
            m = _nonneg(s["minItems"], p)
            if m > 0:
                out.append(Conj(types=frozenset(["array"]), arr=ArrC(max_items=m - 1), origins=(loc,)))
        if "maxItems" in keys:
            handled.add("maxItems")
            out.append(Conj(types=frozenset(["array"]), arr=ArrC(min_items=_nonneg(s["maxItems"], p) + 1), origins=(loc,)))
        if "minProperties" in keys:
            handled.add("minProperties")
            m = _nonneg(s["minProperties"], p)
            if m > 0:
                out.append(Conj(types=frozenset(["object"]), obj=ObjC(max_props=m - 1), origins=(loc,)))
        if "maxProperties" in keys:
            handled.add("maxProperties")
            out.append(Conj(types=frozenset(["object"]), obj=ObjC(min_props=_nonneg(s["maxProperties"], p) + 1), origins=(loc,)))
        # unknown keywords (`_uniqueItems`, vendor extensions) have no validation meaning; neither
        # do then/else without if, if without then/else, or format when formats are not asserted
        rest = {k for k in keys - handled if k in VALIDATION_KEYWORDS}
        if "if" not in s:
            rest -= {"then", "else"}
        elif "then" not in s and "else" not in s:
            rest.discard("if")
        if not self.opt.format_assert:
            rest.discard("format")
        if rest:
            for kw in sorted(rest):
                self.unsupported(p, kw, "negation (not / if-else) of this keyword is not compiled")
        return out

    def _exclude_values(self, values, loc, only: frozenset | None = None) -> list[Conj]:
        """Instances equal to none of ``values`` (of the types in ``only``, when given)."""
        by_type: dict[str, list] = {}
        for v in values:
            by_type.setdefault(json_type(v), []).append(v)
        out = []
        for t in TYPES:
            if only is not None and t not in only:
                continue
            vs = by_type.get(t, [])
            if not vs:
                out.append(Conj(types=frozenset([t]), origins=(loc,)))
                continue
            if t == "null":
                continue
            if t == "boolean":
                rest = frozenset({True, False}) - set(vs)
                if rest:
                    out.append(Conj(types=frozenset([t]), bools=rest, origins=(loc,)))
            elif t == "number":
                out.append(Conj(types=frozenset([t]), num=NumC(excluded=tuple(to_decimal(v) for v in vs)), origins=(loc,)))
            elif t == "string":
                out.append(Conj(types=frozenset([t]), str=StrC(excluded=tuple(vs)), origins=(loc,)))
            else:  # arrays / objects: differ from every excluded value somewhere
                dnf = [Conj(types=frozenset([t]), origins=(loc,))]
                for v in vs:
                    dnf = self.product(dnf, self._differs_from(v, loc))
                out.extend(dnf)
        return out

    def _value_loc(self, v, loc: Loc, where: str) -> Loc:
        """A synthetic schema location ``{"enum": [v]}`` (enum: every draft has it)."""
        schema = {"enum": [v]}
        return Loc(schema, loc.resolver, f"{loc.pointer}/{where}", f"{loc.base}#value{id(schema)}", loc.spec)

    def _differs_from(self, v, loc: Loc) -> list[Conj]:
        """Arrays / objects not JSON-equal to the array / object ``v`` (objects: over texts without
        duplicate keys, the exactness policy)."""
        if isinstance(v, list):
            n = len(v)
            any_loc = Loc(True, loc.resolver, loc.pointer, "#true", loc.spec)
            out = [Conj(types=frozenset(["array"]), arr=ArrC(min_items=n + 1), origins=(loc,))]
            if n:
                out.append(Conj(types=frozenset(["array"]), arr=ArrC(max_items=n - 1), origins=(loc,)))
            for i in range(n):  # same length, position i differs
                prefix = tuple((NegLoc(self._value_loc(v[i], loc, f"enum/{i}")),) if j == i else (any_loc,)
                               for j in range(n))
                out.append(Conj(types=frozenset(["array"]), arr=ArrC(groups=((prefix, None),), min_items=n, max_items=n),
                                origins=(loc,)))
            return out
        keys = list(v)
        out = [Conj(types=frozenset(["object"]), obj=ObjC(min_props=len(keys) + 1), origins=(loc,))]
        for k in keys:  # k missing, or its value differs (else an extra key makes the count exceed)
            out.append(Conj(types=frozenset(["object"]), obj=ObjC(forbidden=frozenset([k])), origins=(loc,)))
            neg = NegLoc(self._value_loc(v[k], loc, f"enum/{k}"))
            out.append(Conj(types=frozenset(["object"]), obj=ObjC(groups=(ObjGroup({k: (neg,)}, (), None),),
                                                                required=frozenset([k])), origins=(loc,)))
        return out

    # ---------------------------------------------------------------- emission
    def emit_conj(self, c: Conj) -> list[tuple[str, ...]]:
        try:
            return self._emit_conj(c)
        except CompileBudgetError as e:
            if not c.origins:
                raise
            origin = c.origins[0]
            raise e.located((origin.loc if isinstance(origin, NegLoc) else origin).pointer) from None

    def _emit_conj(self, c: Conj) -> list[tuple[str, ...]]:
        if c.nt is not None:
            return [(c.nt,)]
        if c.enum is not None:
            alts = []
            strings: list[str] = []
            for v in json_unique(c.enum):
                if self.value_allowed(v, c):
                    if isinstance(v, str):
                        strings.append(v)
                    else:
                        alts.append((self.literal_nt(v),))
            if len(strings) > 1:  # one terminal for all the strings (spelling.literals_automaton)
                alts.extend((t,) for t in self._string_set_terminals(sorted(strings)))
            elif strings:
                alts.append((self.literal_nt(strings[0]),))
            return alts
        alts = []
        if "null" in c.types and c.null_ok:
            alts.append((self.b.terminal(rx.literal("null"), "NULL"),))
        if "boolean" in c.types:
            for v in sorted(c.bools):
                alts.append((self.b.terminal(rx.literal("true" if v else "false"), "TRUE" if v else "FALSE"),))
        if "number" in c.types:
            sym = self.emit_number(c.num)
            if sym:
                alts.append((sym,))
        if "string" in c.types:
            sym = self.emit_string(c.str)
            if sym:
                alts.append((sym,))
        if "array" in c.types:
            sym = self.emit_array(c.arr)
            if sym:
                alts.append((sym,))
        if "object" in c.types:
            for o in self._split_witnesses(c.obj):
                sym = self.emit_object(o)
                if sym:
                    alts.append((sym,))
        return alts

    def _split_witnesses(self, o: ObjC, depth: int = 0) -> list[ObjC]:
        """The object as alternatives that each track few witnesses. Witnesses every object of
        ``o`` satisfies are dropped; one left with a single declared-key alternative becomes that
        key's value constraint. Past MAX_WITNESSES, split on the presence of the declared key that
        most witnesses mention: present, the negated branches of a discriminated oneOf are implied
        (``_witness_implied``); absent, their alternatives on that key are gone. Each split
        replaces 2**n member variants by two objects."""
        kept, required, groups = [], set(o.required), list(o.groups)
        for w in o.witnesses:
            if self._witness_implied(o, w):
                continue
            w = tuple(a for a in w if self._alternative_possible(o, a))
            if not w:
                return []  # a witness no member of such an object can satisfy
            if len(w) == 1 and w[0][3] is not None and not w[0][1]:
                required.add(w[0][3])
                groups.append(ObjGroup({w[0][3]: w[0][2]}, (), None))
                continue
            kept.append(w)
        o = replace(o, witnesses=tuple(kept), required=frozenset(required), groups=tuple(groups))
        if len(kept) <= MAX_WITNESSES or depth >= MAX_WITNESS_SPLITS:
            return [o]
        counts: dict = {}
        declared = {k for g in o.groups for k in g.props}
        for w in kept:
            touched = {a[3] for a in w if a[3] is not None and not a[1]}
            touched |= {k for k in declared for a in w if a[3] is None
                        and all(_fullmatch(r, k) for r in a[0]) and not any(_fullmatch(r, k) for r in a[1])}
            for k in touched:
                if k not in o.required and not self._forbids_key(o, k):
                    counts[k] = counts.get(k, 0) + 1
        if not counts:
            return [o]
        k = max(sorted(counts), key=lambda x: counts[x])
        value, negated = self._split_value(kept, k)
        if value is not None:
            # on k's value (the witnesses mostly ask "k holds a value outside S"): k present with
            # such a value satisfies them; k absent or inside S leaves their other alternatives.
            # The alternatives asking for exactly that value are settled here, not left to the
            # disjointness prover (negated object schemas are beyond it)
            asks = _split_canon(value)
            hit = [any(a[3] == k and not a[1] and len(a[2]) == 1 and _split_canon(a[2][0]) == asks for a in w)
                   for w in kept]
            present = replace(o, required=o.required | {k}, groups=o.groups + (ObjGroup({k: (value,)}, (), None),),
                              witnesses=tuple(w for w, h in zip(kept, hit) if not h))
            rest = tuple(tuple(a for a in w if not (a[3] == k and not a[1] and len(a[2]) == 1
                                                    and _split_canon(a[2][0]) == asks)) for w in kept)
            if not all(rest):
                return self._split_witnesses(present, depth + 1)  # k absent or inside S: nothing holds
            absent = replace(o, groups=o.groups + (ObjGroup({k: (negated,)}, (), None),), witnesses=rest)
            return self._split_witnesses(present, depth + 1) + self._split_witnesses(absent, depth + 1)
        out = self._split_witnesses(replace(o, required=o.required | {k}), depth + 1)
        without = [tuple(a for a in w if a[3] != k) for w in kept]
        if all(without):  # a witness only key k could satisfy: no object without k
            out += self._split_witnesses(replace(o, forbidden=o.forbidden | {k}, witnesses=tuple(without)), depth + 1)
        return out

    def _split_value(self, witnesses, k: str) -> tuple:
        """(value ref, its negation) to split an object on: the most common value schema that the
        witnesses' alternatives on the literal key ``k`` ask for, when it is one negatable ref that
        constrains something; (None, None) for a split on k's presence alone."""
        counts: dict = {}
        for w in witnesses:
            for a in w:
                if a[3] == k and not a[1] and len(a[2]) == 1:
                    canon = _split_canon(a[2][0])
                    if canon is not None:
                        counts.setdefault(canon, [0, a[2][0]])[0] += 1
        if not counts:
            return None, None
        _, r = max(counts.values(), key=lambda x: x[0])
        if isinstance(r, NegLoc):
            return r, r.loc
        if self._values_imply([], r):
            return None, None  # any value: the presence split is the same and simpler
        return r, NegLoc(r)

    def value_allowed(self, v, c: Conj) -> bool:
        """Exact membership of a finite candidate in the conjunction: validated against its schemas."""
        if json_type(v) not in c.types:
            return False
        for loc in c.origins:
            neg = isinstance(loc, NegLoc)
            target = loc.loc if neg else loc
            if not isinstance(target, Loc):
                continue
            ok = self._validate(target, v)
            if ok == neg:
                return False
        # records built from synthesized negations carry their own checks
        t = json_type(v)
        if t == "number" and any(to_decimal(v) == e for e in c.num.excluded):
            return False
        if t == "string" and v in c.str.excluded:
            return False
        if t == "boolean" and v not in c.bools:
            return False
        if t == "null" and not c.null_ok:
            return False
        return True

    def _validate(self, loc: Loc, value) -> bool:
        """``value`` is valid against ``loc``'s schema (jsonschema, with the schema's draft)."""
        import jsonschema
        if isinstance(loc.schema, bool):
            return loc.schema
        draft = self.draft_of(loc)
        key = (id(loc.schema), id(loc.resolver), draft)
        hit = self._validator_memo.get(key)
        if hit is None:
            cls = {4: jsonschema.Draft4Validator, 6: jsonschema.Draft6Validator, 7: jsonschema.Draft7Validator,
                   2019: jsonschema.Draft201909Validator, 2020: jsonschema.Draft202012Validator}.get(
                       draft, jsonschema.Draft202012Validator)
            schema, finite = loc.schema, []
            # enum / const are checked here by canonical keys, and jsonschema gets the rest: its enum
            # check is a linear scan, so an enum's values validated one by one were quadratic
            # (2,400 cvar names: 1.2 s)
            if isinstance(schema, dict) and not (draft <= 7 and "$ref" in schema):  # (siblings of $ref
                #                                                     are ignored up to draft 7)
                if isinstance(schema.get("enum"), list):
                    finite.append({json_key(v) for v in schema["enum"]})
                if "const" in schema and draft >= 6:
                    finite.append({json_key(schema["const"])})
                if finite:
                    schema = {k: v for k, v in schema.items() if k not in ("enum", "const") or
                              (k == "const" and draft < 6)}
            try:
                validator = cls(schema, registry=self.registry,
                                format_checker=cls.FORMAT_CHECKER if self.opt.format_assert else None,
                                _resolver=loc.resolver)
            except Exception:  # noqa: BLE001 - no resolver for this document: the registry alone
                validator = cls(schema, registry=self.registry)
            # the schema and resolver are kept so their ids stay theirs while cached
            hit = self._validator_memo[key] = (loc.schema, loc.resolver, validator, finite)
        _, _, validator, finite = hit
        if finite:
            k = json_key(value)
            if not all(k in keys for keys in finite):
                return False
        try:
            return validator.is_valid(value)
        except Exception:  # noqa: BLE001 - as before: retry without the document's resolver
            return type(validator)(validator.schema, registry=self.registry).is_valid(value)

    # literal values --------------------------------------------------------
    def literal_nt(self, v) -> str:
        t = json_type(v)
        if t == "null":
            return self.b.terminal(rx.literal("null"), "NULL")
        if t == "boolean":
            return self.b.terminal(rx.literal("true" if v else "false"), "TRUE" if v else "FALSE")
        if t == "number":
            return self.b.terminal(num.decimal_literal(to_decimal(v)))
        if t == "string":
            return self.b.terminal(self._string_literal(v))
        key = ("lit", json.dumps(v, sort_keys=True))
        if key in self._emit_memo:
            return self._emit_memo[key]
        name = self.b.fresh("literal")
        self._emit_memo[key] = name
        if t == "array":
            if not v:
                self.b.rule(name, [(self.LBRACK, self.RBRACK)])
            else:
                body = [self.LBRACK]
                for i, x in enumerate(v):
                    if i:
                        body.append(self.COMMA)
                    body.append(self.literal_nt(x))
                body.append(self.RBRACK)
                self.b.rule(name, [tuple(body)])
            return name
        members = {k: (self.key_terminal_literal(k), self.literal_nt(x)) for k, x in v.items()}
        body = self.members_machine(members, frozenset(v), [], 0, None, (), "#const")
        self.b.rule(name, [(self.LBRACE, body, self.RBRACE)])
        return name

    def _string_set_terminals(self, values: list[str]) -> list[str]:
        """Terminals for a sorted set of strings: one automaton per run of values of at most
        ``STRING_SET_CHARS`` characters (2,700 values: ~30 terminals instead of 2,700; one trie for
        all of them would be ~160k states before minimization, built in Python at compile time)."""
        out, run, size = [], [], 0
        for v in values + [None]:
            if v is None or (run and size + len(v) > STRING_SET_CHARS):
                out.append(self.b.terminal(self._string_literals(tuple(run))) if len(run) > 1
                           else self.literal_nt(run[0]))
                run, size = [], 0
            if v is not None:
                run.append(v)
                size += len(v) + 1
        return out

    def key_terminal_literal(self, k: str) -> str:
        return self._key_then_colon(self.b.terminal(self._string_literal(k)))

    def _string_literal(self, text: str) -> rx.Regex:
        """The quoted spellings of one string: every JSON spelling, or (``escapes="minimal"``)
        json.dumps' (a text holding a lone surrogate keeps every spelling: it has no UTF-8 one)."""
        if self._quote_mode == "minimal" and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return rx.literal(json.dumps(text, ensure_ascii=False))
        return spelling.literal_automaton(text)

    def _string_literals(self, texts: tuple[str, ...]) -> rx.Regex:
        if self._quote_mode == "minimal" and not any(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t):
            return rx.alt(*(rx.literal(json.dumps(t, ensure_ascii=False)) for t in texts))
        return spelling.literals_automaton(texts)

    def _key_then_colon(self, key_terminal: str) -> str:
        """The key symbol of object members: the quoted key, then the colon as a terminal of its own.
        (The colon's whitespace runs made every key automaton ~130 states larger, built per key.)"""
        got = self._key_symbols.get(key_terminal)
        if got is None:
            got = self._key_symbols[key_terminal] = self.b.fresh("key")
            self.b.rule(got, [(key_terminal, self.b.terminal(self.colon_re, "COLON"))])
        return got

    # numbers ----------------------------------------------------------------
    def emit_number(self, n: NumC) -> str | None:
        lo, hi = n.lo, n.hi
        if n.integer:
            ilo = None if lo is None else (math.floor(lo) + 1 if (n.lo_strict and lo == math.floor(lo)) else math.ceil(lo))
            ihi = None if hi is None else (math.ceil(hi) - 1 if (n.hi_strict and hi == math.ceil(hi)) else math.floor(hi))
            if ilo is not None and ihi is not None and ilo > ihi:
                return None
            base = num.integer_range(ilo, ihi, zero_fraction=n.int_zero_fraction)
        else:
            if lo is not None and hi is not None and (lo > hi or (lo == hi and (n.lo_strict or n.hi_strict))):
                return None
            base = num.number_range(lo, n.lo_strict, hi, n.hi_strict)
        positives = [base] + list(n.positive)
        negatives = [num.decimal_literal(e) for e in n.excluded] + list(n.negative)
        multiples = n.multiple_of
        if any(_multiple_dfa_regex(m) is None for m, _ in multiples) and lo is not None and hi is not None:
            # a multipleOf too large for a digit automaton, in a bounded range: list the few multiples
            listed = _listed_multiples(n)
            if listed is not None:
                if not listed:
                    return None
                positives = [rx.alt(*(num.decimal_literal(v) for v in listed))] + list(n.positive)
                multiples = ()
        for m, ptr in multiples:
            if n.integer and (1 / m) == (1 / m).to_integral_value():
                continue  # every integer is a multiple of 1/n
            d = _multiple_dfa_regex(m)
            if d is None:
                self.unsupported(ptr, "multipleOf", f"multipleOf {m} is not compiled (numerator too large)")
                continue
            positives.append(d)
        return self._regex_symbol(positives, negatives, quote=False)

    def _regex_symbol(self, positives, negatives, quote: bool) -> str | None:
        """A terminal (or right-linear rules) for the intersection of positives minus negatives."""
        if len(positives) == 1 and not negatives and not isinstance(positives[0], cpdfa.Dfa):
            r = positives[0]
            if isinstance(r, rx.Alt) and not r.items:
                return None
            term = _quote(r, quote)
            # a large bounded repeat ("(\S+\s+){0,99}\S+": at most 100 words) unrolls past the
            # terminal automaton's budget; its code-point automaton is small: rules instead
            if rx.position_count(term) < MAX_TERMINAL_POSITIONS:
                return self.b.terminal(term)
        key = ("re", tuple(positives), tuple(negatives), quote)
        if key in self._emit_memo:
            return self._emit_memo[key]
        dfa = cpdfa.combine(positives, negatives)
        if dfa.is_empty():
            self._emit_memo[key] = None
            return None
        # small automata become one terminal; larger ones (e.g. a pattern with a long length bound)
        # become right-linear rules, which stay linear in the automaton's size
        r = dfa.to_regex(max_nodes=3000) if len(dfa.trans) <= 40 else None
        sym = None
        if r is not None:
            sym = self.b.terminal(_quote(r, quote))
        elif quote in (True, "minimal") and len(dfa.trans) * 6 <= MAX_KEY_AUTOMATON_STATES:  # (spellings run
            #                                    6-12 states per code-point state: skip hopeless ones)
            # a JSON string value: one terminal spelled straight from the automaton (every JSON
            # spelling, with escapes="minimal" too: a superset of json.dumps', still valid). Rules with a
            # terminal per character made every character a lexeme, so a token of the string
            # built one parser state per character (160k states, ~0.9 s per mask, "oneOf" of
            # unanchored patterns in Github_easy o65510)
            try:
                auto = spelling.quoted_automaton_cached(dfa)
                # as for key regions: a spelling past this would exceed the byte DFA budget at
                # the first mask; rules stay linear in the automaton instead
                if len(auto.accepting) <= MAX_KEY_AUTOMATON_STATES:
                    sym = self.b.terminal(auto)
            except CompileBudgetError:
                sym = None
        if sym is None:
            sym = self._dfa_rules(dfa, quote)
        self._emit_memo[key] = sym
        return sym

    def _dfa_rules(self, dfa: cpdfa.Dfa, quote: bool) -> str:
        """Right-linear rules for a DFA whose regex would be too large."""
        edges = dfa.edges()
        names = {s: self.b.fresh("dfa") for s in edges}
        q = self.b.terminal(rx.literal('"'), "QUOTE") if quote else None
        for s, out in edges.items():
            alts = []
            if dfa.accept[s]:
                alts.append((q,) if quote else ())
            for t, cls in out.items():
                term = self.b.terminal(st.encode_for(quote, cls))
                alts.append((term, names[t]))
            self.b.rule(names[s], alts)
        if quote:
            start = self.b.fresh("str")
            self.b.rule(start, [(q, names[0])])
            return start
        return names[0]

    # strings ----------------------------------------------------------------
    def emit_string(self, s: StrC) -> str | None:
        if s.max_len is not None and s.min_len > s.max_len:
            return None
        length = rx.repeat(rx.any_char(), s.min_len, s.max_len)
        positives = [p for p in s.patterns if not self._matches_everything(p)]
        trivial_length = s.min_len == 0 and s.max_len is None
        if not trivial_length:
            if len(positives) == 1 and not isinstance(positives[0], cpdfa.Dfa) and \
                    _length_implied(positives[0], s.min_len, s.max_len):
                pass
            elif len(positives) == 1 and isinstance(positives[0], rx.Repeat) and isinstance(positives[0].item, rx.Chars) \
                    and positives[0].max is None:
                p0 = positives[0]
                lo = max(p0.min, s.min_len)
                if s.max_len is not None and lo > s.max_len:
                    return None  # `^a{60,}$` with maxLength 50
                if not s.negative and not s.excluded and max(lo, s.max_len or 0) > LONG_STRING:
                    # `^[a-zA-Z0-9 ]+$` with maxLength 5000: chunks of the class, as for any
                    # long string (its automaton as rules made every character a lexeme: ~1 ms
                    # a mask)
                    opening = self.b.terminal(rx.literal('"'), "QUOTE")
                    chain = self._class_chain(p0.item, lo, s.max_len, "raw" if s.raw_only else self._quote_mode)
                    name = self.b.fresh("string")
                    self.b.rule(name, [(opening, chain)])
                    return name
                positives = [rx.repeat(p0.item, lo, s.max_len)]
            else:
                positives.append(length)
        negatives = list(s.negative) + [rx.literal(v) for v in s.excluded]
        if positives == [length] and not negatives and max(s.min_len, s.max_len or 0) > LONG_STRING:
            return self._long_string(s.min_len, s.max_len)
        if not positives:
            positives = [rx.star(rx.any_char())]
        quote = "raw" if s.raw_only else self._quote_mode
        if length in positives and len(positives) == 2 and not negatives and max(s.min_len, s.max_len or 0) > LONG_STRING:
            # "^https?://.*" with maxLength 2048: a fixed-length head, then one class repeated
            pattern = positives[1 - positives.index(length)]
            sym = self._head_then_class(pattern, s.min_len, s.max_len, quote) if not isinstance(pattern, cpdfa.Dfa) else False
            if sym is not False:
                return sym
        try:
            return self._regex_symbol(positives, negatives, quote=quote)
        except CompileBudgetError:
            if length not in positives or s.max_len is None:
                raise
        # pattern x length too large as a product (an email format with maxLength 1024, 50 words
        # in 500 characters): the pattern's automaton with a length counter, expanded lazily
        key = ("counted", tuple(positives), tuple(negatives), quote)
        if key not in self._emit_memo:
            dfa = cpdfa.combine([p for p in positives if p is not length], negatives)
            self._emit_memo[key] = self._counted_string(dfa, s.min_len, s.max_len, quote)
        return self._emit_memo[key]

    def _counted_string(self, dfa: cpdfa.Dfa, lo: int, hi: int, quote) -> str | None:
        """Strings of ``dfa`` with code-point length in [lo, hi] as a ``CountedStringFamily``: member
        (state, length so far); one terminal per character class, so one lexeme per code point. Only
        members that can still end within the bounds are ever referenced (no dead ends)."""
        import numpy as np

        edges = dfa.edges()
        n = len(dfa.trans)
        if n * (hi + 1) > MAX_COUNTED_CELLS:
            raise CompileBudgetError(f"a {n}-state string automaton with a length counter to {hi} exceeds its budget")
        src, dst = [], []
        for q, out in edges.items():
            for t in out:
                src.append(q)
                dst.append(t)
        src_a, dst_a = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
        # ends[q, l]: an accepting state is exactly l characters away from q
        ends = np.zeros((n, hi + 1), dtype=bool)
        ends[:, 0] = dfa.accept
        for l in range(1, hi + 1):
            ends[:, l] = np.bincount(src_a, weights=ends[dst_a, l - 1], minlength=n) > 0 if len(src) else False
        # completable[q, k]: from q after k characters, an end at a total length in [lo, hi]
        cum = np.concatenate([np.zeros((n, 1), dtype=np.int64), np.cumsum(ends, axis=1)], axis=1)
        k = np.arange(hi + 1)
        first = np.maximum(lo - k, 0)
        last = hi - k
        completable = (cum[:, last + 1] - cum[:, first]) > 0
        if not completable[0, 0]:
            return None
        close = self.b.terminal(rx.literal('"'), "QUOTE") if quote else None
        terms = {}
        family_edges = []
        for q in range(n):
            row = []
            for t, cls in edges.get(q, {}).items():
                key = (cls, quote)
                if key not in terms:
                    terms[key] = self.b.terminal(st.encode_for(quote, cls))
                row.append((t, terms[key]))
            family_edges.append(tuple(row))
        name = self.b.fresh("counted")
        self.b.families[name] = CountedStringFamily(name, tuple(family_edges), tuple(bool(a) for a in dfa.accept),
                                                    np.packbits(completable, axis=None).tobytes(), lo, hi, close)
        body = CountedStringFamily.member(name, 0, 0)
        if not quote:
            return body
        start = self.b.fresh("str")
        self.b.rule(start, [(close, body)])
        return start

    def _matches_everything(self, r: rx.Regex) -> bool:
        """The pattern holds for every string (e.g. an unanchored "([0-9a-z]+)?")."""
        key = ("universal", r)
        if key not in self._emit_memo:
            try:
                d = cpdfa.combine([r])
                self._emit_memo[key] = len(d.trans) == 1 and d.accept[0]
            except CompileBudgetError:
                self._emit_memo[key] = False
        return self._emit_memo[key]

    def _head_then_class(self, pattern: rx.Regex, lo: int, hi: int | None, quote) -> str | None | bool:
        """Strings of ``pattern`` with code-point length in [lo, hi], when the pattern's automaton is
        a loop-free head ending in one accepting state that loops on a single class and goes
        nowhere else (``^data:image/png;base64,[A-Za-z0-9+/=]*$``, ``^https?://.*``): per head
        path of length n, the head's classes then the class repeated [lo - n, hi - n] times as a
        chunk chain (see ``_long_string``); the product automaton would have a state per length.
        False when the pattern has another shape."""
        try:
            d = cpdfa.combine([pattern])
        except CompileBudgetError:
            return False
        live = d.live()
        loops = [q for q, row in enumerate(d.trans) if live[q] and q in row]
        if len(loops) != 1 or not d.accept[loops[0]]:
            return False
        tail = loops[0]
        tail_atoms = frozenset(a for a, t in enumerate(d.trans[tail]) if t == tail)
        if any(live[t] and t != tail for t in d.trans[tail]):
            return False
        # head paths: loop-free walks from the start to the tail state (or accepting before it)
        paths: list = []  # (classes, ends_in_tail)
        stack = [(0, ())]
        while stack:
            q, classes = stack.pop()
            if len(paths) > 64 or len(classes) > 256:
                return False
            if q == tail:
                paths.append((classes, True))
                continue
            if d.accept[q]:
                paths.append((classes, False))
            by_target: dict = {}
            for a, t in enumerate(d.trans[q]):
                if live[t]:
                    by_target.setdefault(t, set()).add(a)
            for t, atoms in by_target.items():
                if t == q:  # a loop outside the tail: not this shape
                    return False
                stack.append((t, classes + (frozenset(atoms),)))
        tail_class = d.atoms.to_class(tail_atoms)
        alts = []
        for classes, ends_in_tail in paths:
            n = len(classes)
            head = rx.seq(*(st.encode_for(quote, d.atoms.to_class(c)) for c in classes))
            if not ends_in_tail:
                if n >= lo and (hi is None or n <= hi):
                    alts.append((self.b.terminal(rx.seq(rx.literal('"'), head, rx.literal('"'))),))
                continue
            a, b = max(lo - n, 0), None if hi is None else hi - n
            if b is not None and b < 0:
                continue
            alts.append((self.b.terminal(rx.seq(rx.literal('"'), head)), self._class_chain(tail_class, a, b, quote)))
        name = self.b.fresh("string")
        self.b.rule(name, alts or [(self.NEVER,)])
        return name

    def _class_chain(self, cls: rx.Regex, lo: int, hi: int | None, quote) -> str:
        """``cls{lo,hi}`` then the closing quote, encoded, as a chain of 16-character chunks."""
        key = ("classchain", cls, lo, hi, quote)
        if key in self._emit_memo:
            return self._emit_memo[key]
        enc = st.encode_for(quote, cls)
        chunk = self.b.terminal(rx.repeat(enc, STRING_CHUNK, STRING_CHUNK))

        def tail(a: int, b: int | None) -> str:
            return self.b.terminal(rx.seq(rx.repeat(enc, a, b), rx.literal('"')))

        if hi is None:
            k_last = max(0, -(-(lo - LONG_STRING) // STRING_CHUNK))
        else:
            k_last = hi // STRING_CHUNK
        if k_last > 100000:
            raise CompileBudgetError("string length bound too large")
        nxt = None
        for k in range(k_last, -1, -1):
            a, b = lo - k * STRING_CHUNK, None if hi is None else hi - k * STRING_CHUNK
            a0 = max(a, 0)
            nm = self.b.fresh("chars")
            alts = []
            if b is None:
                alts.append((tail(a0, None),) if a0 <= LONG_STRING else (chunk, nxt))
            else:
                if a0 <= min(b, STRING_CHUNK - 1):
                    alts.append((tail(a0, min(b, STRING_CHUNK - 1)),))
                if b >= STRING_CHUNK and nxt is not None:
                    alts.append((chunk, nxt))
            self.b.rule(nm, alts or [(self.NEVER,)])
            nxt = nm
        self._emit_memo[key] = nxt
        return nxt

    def _long_string(self, lo: int, hi: int | None) -> str:
        """Length-bounded strings as a chain of fixed-size chunk terminals: a single terminal for
        ``.{0,1000}`` would need ~1000x the automaton of one encoded character."""
        key = ("longstr", lo, hi)
        if key in self._emit_memo:
            return self._emit_memo[key]
        quote = self.b.terminal(rx.literal('"'), "QUOTE")
        name = self.b.fresh("string")
        self.b.rule(name, [(quote, self._class_chain(rx.any_char(), lo, hi, self._quote_mode))])
        self._emit_memo[key] = name
        return name

    # arrays -----------------------------------------------------------------
    def emit_array(self, a: ArrC) -> str | None:
        if a.max_items is not None and a.min_items > a.max_items:
            return None
        # positional schema lists, merged over the contributing groups
        m = max((len(p) for p, _ in a.groups), default=0)

        def schemas_at(i: int):
            refs = []
            for prefix, items in a.groups:
                if i < len(prefix):
                    refs.extend(prefix[i])
                elif items is not None:
                    refs.extend(items)
            return refs

        contains = [x for x in a.contains if x[1] > 0 or x[2] is not None]
        counted = len(contains) > 1 or any(x[2] is not None for x in contains)
        need = 0
        c_refs = None
        cmax = None
        if contains:
            c_loc, need, cmax, ptr = contains[0]
            c_refs = [c_loc]
        if a.unique and not (a.max_items is not None and a.max_items <= 1):
            sym = self._unique_finite_array(a, m, schemas_at, contains)
            if sym is False:
                sym = self._unique_open_array(a, m, schemas_at, contains)
            if sym is False:
                sym = self._unique_string_domain_array(a, m, schemas_at, contains)
            if sym is False:
                sym = self._unique_searched_array(a, m, schemas_at, contains)
            if sym is not False:
                return sym
            self.unsupported(a.pointer, "uniqueItems", "uniqueItems is only compiled for arrays of one item schema "
                                                       "(no prefixItems or contains)")
        key = ("arr", tuple(refs_key(schemas_at(i)) for i in range(m + 1)), a.min_items, a.max_items,
               refs_key(c_refs) if c_refs else None, need,
               tuple((refs_key([x[0]]), x[1], x[2]) for x in contains) if counted else None)
        if key in self._emit_memo:
            return self._emit_memo[key]
        name = self.b.fresh("array")
        self._emit_memo[key] = name
        if counted:
            self.b.rule(name, [(self.LBRACK, self._counted_items(a, m, schemas_at, contains), self.RBRACK)])
            return name
        elem_nt = {}

        def elem(i: int, counted: bool) -> str | None:
            idx = min(i, m)
            k = (idx, counted)
            if k not in elem_nt:
                refs = schemas_at(idx) + (c_refs if counted else [])
                elem_nt[k] = self.satisfiable_nt(refs)
            return elem_nt[k]

        cap = m if a.max_items is None else a.max_items
        cap = max(cap, a.min_items, 1)
        states: dict = {}
        todo = []

        def state(n: int, c: int) -> str:
            k = (n, c)
            if k not in states:
                if len(states) > self.opt.max_array_states:
                    raise CompileBudgetError("array constraints need too many states")
                states[k] = self.b.fresh("items")
                todo.append(k)
            return states[k]

        # an element symbol for position n, with and without counting toward contains
        root = state(0, 0)
        while todo:
            n, c = todo.pop()
            nm = states[(n, c)]
            alts = []
            done = n >= a.min_items and c >= need
            if done:
                alts.append(())
            can_add = a.max_items is None or n < a.max_items
            if can_add:
                sep = (self.COMMA,) if n > 0 else ()
                nn = min(n + 1, cap) if a.max_items is None else n + 1
                if a.max_items is None and n >= cap and c >= need and n > 0:
                    # the unbounded tail, as a left-recursive list
                    e = elem(n, False)
                    if e is not None:
                        tail = self.b.fresh("tail")
                        self.b.rule(tail, [(self.COMMA, e), (tail, self.COMMA, e)])
                        alts.append((tail,))
                    self.b.rule(nm, alts or [(self.NEVER,)])
                    continue
                e = elem(n, False)
                if e is not None:
                    alts.append(sep + (e, state(nn, c)))
                if c < need:
                    ec = elem(n, True)
                    if ec is not None:
                        alts.append(sep + (ec, state(nn, c + 1)))
            self.b.rule(nm, alts or [(self.NEVER,)])
        self.b.rule(name, [(self.LBRACK, root, self.RBRACK)])
        return name

    def _counted_items(self, a: ArrC, m: int, schemas_at, contains) -> str:
        """Item list with exact counts of the items matching each ``contains`` constraint (several
        constraints, or maxContains, need exact counts rather than a lower bound): each item
        matches a subset of the constraints and the negation of the others."""
        if len(contains) > MAX_CONTAINS:
            raise CompileBudgetError(f"more than {MAX_CONTAINS} contains constraints on one array")
        cap = max(m, a.min_items, 1) if a.max_items is None else a.max_items
        # a count past need (no maximum) or past the maximum never matters: cap it there
        limits = [lo if hi is None else hi + 1 for _, lo, hi, _ in contains]
        elem_nt: dict = {}

        def elem(i: int, mask: int) -> str | None:
            k = (min(i, m), mask)
            if k not in elem_nt:
                refs = list(schemas_at(k[0]))
                for j, (c_loc, _, _, _) in enumerate(contains):
                    refs.append(c_loc if mask >> j & 1 else _negated_ref(c_loc))
                elem_nt[k] = self.satisfiable_nt(refs)
            return elem_nt[k]

        states: dict = {}
        todo = []

        def state(n: int, counts: tuple) -> str:
            if (n, counts) not in states:
                if len(states) > self.opt.max_array_states:
                    raise CompileBudgetError("array constraints need too many states")
                states[(n, counts)] = self.b.fresh("items")
                todo.append((n, counts))
            return states[(n, counts)]

        root = state(0, (0,) * len(contains))
        while todo:
            n, counts = todo.pop()
            alts = []
            if n >= a.min_items and all(lo <= c and (hi is None or c <= hi)
                                        for c, (_, lo, hi, _) in zip(counts, contains)):
                alts.append(())
            if a.max_items is None or n < a.max_items:
                sep = (self.COMMA,) if n > 0 else ()
                nn = min(n + 1, cap) if a.max_items is None else n + 1
                for mask in range(1 << len(contains)):
                    nxt = tuple(min(c + (mask >> j & 1), lim) for j, (c, lim) in enumerate(zip(counts, limits)))
                    if any(hi is not None and c > hi for c, (_, _, hi, _) in zip(nxt, contains)):
                        continue
                    e = elem(n, mask)
                    if e is not None:
                        alts.append(sep + (e, state(nn, nxt)))
            self.b.rule(states[(n, counts)], alts or [(self.NEVER,)])
        return root

    def _unique_finite_array(self, a: ArrC, m: int, schemas_at, contains):
        """uniqueItems over a finite item domain (enum/const/boolean/null items, at most 8 values):
        the state is the set of values used so far. False when not applicable."""
        if m > 0 or contains:
            return False
        dnf = self.normalize_refs(schemas_at(0))
        values: list = []
        seen: set = set()
        for c in dnf:
            if c.nt is not None:
                return False
            if c.enum is not None:
                cands = list(c.enum)
            elif c.types <= {"boolean", "null"}:
                cands = ([True, False] if "boolean" in c.types else []) + ([None] if "null" in c.types else [])
            else:
                return False
            for v in cands:
                if json_key(v) not in seen and self.value_allowed(v, c):
                    seen.add(json_key(v))
                    values.append(v)
        if len(values) > 8:
            return False
        lits = [self.literal_nt(v) for v in values]
        names: dict = {}
        todo = [frozenset()]
        names[frozenset()] = self.b.fresh("unique")
        while todo:
            used = todo.pop()
            alts = []
            if len(used) >= a.min_items:
                alts.append(())
            if a.max_items is None or len(used) < a.max_items:
                sep = (self.COMMA,) if used else ()
                for i, lit in enumerate(lits):
                    if i not in used:
                        nxt = used | {i}
                        if nxt not in names:
                            names[nxt] = self.b.fresh("unique")
                            todo.append(nxt)
                        alts.append(sep + (lit, names[nxt]))
            self.b.rule(names[used], alts or [(self.NEVER,)])
        name = self.b.fresh("array")
        self.b.rule(name, [(self.LBRACK, names[frozenset()], self.RBRACK)])
        return name

    def _unique_open_array(self, a: ArrC, m: int, schemas_at, contains):
        """uniqueItems over an open-ended item language (strings of an open-ended language, numbers
        without bounds, integers without an upper bound or a negative lower one, objects that take
        any further key, arrays without maxItems; literals beside them): every prefix of an item
        has infinitely many completions, except integer prefixes that fix the value ("0", "-0",
        "12.") and a literal's first letters, which the Matcher checks as they appear;
        otherwise a repeat is decided when the item closes, where the Matcher removes the array's
        parses (``Grammar.unique_arrays``, ``masks/unique.py``). The grammar states the array with
        an opening terminal of its own. False when not applicable."""
        if m > 0 or contains:
            return False
        refs = schemas_at(0)
        dnf = self.normalize_refs(refs)
        if not dnf:
            return False
        integers = fractions = False
        for c in dnf:
            if c.nt is not None or c.enum is not None:
                return False
            for t in c.types:
                if t == "string" and self._open_ended(c.str):
                    continue
                n = c.num
                plain = not (n.multiple_of or n.positive or n.negative)
                # numbers: "0" / "-0" may go on with a fraction or an exponent
                if t == "number" and not n.integer and n.lo is None and n.hi is None and plain:
                    fractions = True
                    continue
                # integers: prefixes that narrow the value to few integers (near a bound, "0",
                # "12.") are checked by the Matcher as they are read
                if t == "number" and n.integer and plain:
                    bounds = _integer_bounds(n)
                    if integers not in (False, bounds):
                        return False  # two integer ranges: not tracked
                    integers = bounds
                    continue
                if t == "object" and self._open_object(c.obj):
                    continue
                # arrays as items: unboundedly many items keep every prefix open
                if t == "array" and c.arr.max_items is None and not (c.arr.unique or c.arr.groups or c.arr.contains):
                    continue
                if t in ("boolean", "null"):  # a literal's first letter fixes it: checked as read
                    continue
                return False
        name = self._unique_array_rules(a, refs)
        if name is not False and integers is not False and not fractions:
            self.b.unique_integer_items[self._unique_opening[name]] = (*integers, a.min_items)
        return name

    def _unique_string_domain_array(self, a: ArrC, m: int, schemas_at, contains):
        """uniqueItems over a finite set of strings too large for ``_unique_finite_array`` (enums
        of names, locales, ...): the array of ``_unique_open_array``, and the set goes to the
        Matcher, which removes the array's parses when no unused value can complete the item or
        fewer unused values are left than minItems still needs (``Grammar.unique_string_domains``).
        False when not applicable."""
        if m > 0 or contains:
            return False
        refs = schemas_at(0)
        values: list = []
        seen: set = set()
        for c in self.normalize_refs(refs):
            if c.nt is not None or c.enum is None:
                return False
            for v in c.enum:
                if json_key(v) not in seen and self.value_allowed(v, c):
                    seen.add(json_key(v))
                    values.append(v)
        if not values or not all(isinstance(v, str) for v in values):
            return False
        if a.min_items > len(values):
            return None  # not enough distinct values
        name = self._unique_array_rules(a, refs)
        if name is not False:
            self.b.unique_string_domains[self._unique_opening[name]] = (tuple(sorted(values)), a.min_items)
        return name

    def _unique_searched_array(self, a: ArrC, m: int, schemas_at, contains):
        """uniqueItems over any other item language (strings with maxLength or a closed pattern,
        closed objects, mixes): a prefix may have only used values left to complete it, so after
        each token the Matcher searches the item's completions for an unused value, walking only
        the bytes some used value can still be spelled with (``Grammar.unique_searched``,
        ``masks/unique.py``). False when not applicable."""
        if m > 0 or contains:
            return False
        name = self._unique_array_rules(a, schemas_at(0))
        if name is not False:
            self.b.unique_searched[self._unique_opening[name]] = a.min_items
        return name

    def _unique_array_rules(self, a: ArrC, refs):
        """The rules of a unique array with an opening terminal of its own (False: no item)."""
        elem = self.satisfiable_nt(refs)
        if elem is None:
            return False
        key = ("uarray", refs_key(refs), a.min_items, a.max_items)
        if key in self._emit_memo:
            return self._emit_memo[key]
        opening = self.b.terminal(self.b.terminals[self.LBRACK], f"ULBRACK_{len(self.b.unique_arrays)}")
        own: set = set()

        def fresh(prefix: str) -> str:
            name = self.b.fresh(prefix)
            own.add(name)
            return name

        cap = max(a.min_items, 1) if a.max_items is None else a.max_items
        if cap > self.opt.max_array_states:
            raise CompileBudgetError("array constraints need too many states")
        counts = [fresh("uitems") for _ in range(cap + 1)]
        for k in range(cap + 1):
            alts = [()] if k >= a.min_items else []
            if a.max_items is None and k == cap:
                tail = fresh("utail")  # left-recursive, as in emit_array
                self.b.rule(tail, [(self.COMMA, elem), (tail, self.COMMA, elem)])
                alts.append((tail,))
            elif a.max_items is None or k < a.max_items:
                alts.append(((self.COMMA,) if k > 0 else ()) + (elem, counts[k + 1]))
            self.b.rule(counts[k], alts or [(self.NEVER,)])
        name = fresh("uarray")
        self.b.rule(name, [(opening, counts[0], self.RBRACK)])
        self.b.unique_arrays[opening] = frozenset(own)
        self._unique_opening[name] = opening
        self._emit_memo[key] = name
        return name

    @staticmethod
    def _open_object(o: ObjC) -> bool:
        """Any prefix of such an object can go on with new keys (any key name, any value)."""
        return (o.max_props is None and not o.names and not o.witnesses
                and all(g.additional is None and not g.patterns for g in o.groups))

    def _open_ended(self, s: StrC) -> bool:
        """Every prefix of a string satisfying ``s`` has infinitely many completions (no live state
        of its automaton is cut off from a cycle)."""
        if s.max_len is not None:
            return False
        positives = list(s.patterns) + ([rx.repeat(rx.any_char(), s.min_len, None)] if s.min_len else [])
        negatives = list(s.negative) + [rx.literal(v) for v in s.excluded]
        try:
            d = cpdfa.combine(positives or [rx.star(rx.any_char())], negatives)
        except CompileBudgetError:
            return False
        live = d.live()
        succ = [{t for t in row if live[t]} if live[q] else set() for q, row in enumerate(d.trans)]
        # peel live states without live successors: what is left can reach a cycle
        remaining = {q for q in range(len(d.trans)) if live[q]}
        changed = True
        while changed:
            changed = False
            for q in list(remaining):
                if not (succ[q] & remaining):
                    remaining.discard(q)
                    changed = True
        seen, stack = {0}, [0]
        while stack:
            q = stack.pop()
            if live[q] and q not in remaining:
                return False
            for t in succ[q]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return live[0]

    # objects ----------------------------------------------------------------
    def emit_object(self, o: ObjC) -> str | None:
        if o.max_props is not None and o.min_props > o.max_props:
            return None
        if o.required & o.forbidden:
            return None
        declared: list[str] = []
        for g in o.groups:
            for k in g.props:
                if k not in declared:
                    declared.append(k)
        for k in list(o.required_order) + sorted(o.required):
            if k not in declared:
                declared.append(k)
        for k, ds in o.dep_required:
            for x in [k, *sorted(ds)]:
                if x not in declared:
                    declared.append(x)
        for w in o.witnesses:  # a witness naming a key: that key gets a member of its own
            for *_, k in w:
                if k is not None and k not in declared:
                    declared.append(k)
        names_dnf = None
        if o.names:
            names_dnf = self.normalize_refs(list(o.names))
        members: dict[str, tuple[str, str]] = {}
        member_refs: dict[str, list] = {}
        for k in declared:
            if k in o.forbidden:
                continue
            if o.names and not all(self._validate(r, k) for r in o.names if isinstance(r, Loc)):
                continue
            refs = []
            for g in o.groups:
                if k in g.props:
                    refs.extend(g.props[k])
                matched = [pr for pre, pr in g.patterns if _fullmatch(pre, k)]
                for pr in matched:
                    refs.extend(pr)
                if not matched and k not in g.props and g.additional is not None:
                    refs.extend(g.additional)
            v = self.satisfiable_nt(refs)
            if v is None:
                continue
            members[k] = (self.key_terminal_literal(k), v)
            member_refs[k] = refs
        if any(k not in members for k in o.required):
            return None
        # regions of undeclared keys: split by every pattern, value = the schemas that apply
        base_key = rx.star(rx.any_char())
        key_pos = [base_key]
        if names_dnf is not None:
            r = self._names_regex(names_dnf, o.pointer)
            if r is None:
                key_pos = None
            else:
                key_pos = [r]
        regions = []
        excluded = []
        if key_pos is not None:
            pats = [(pre, pr, gi) for gi, g in enumerate(o.groups) for pre, pr in g.patterns]
            all_free = all(g.additional is None or _is_true_refs(g.additional) for g in o.groups) and \
                all(_is_true_refs(pr) for _, pr, _ in pats)
            excluded = [rx.literal(k) for k in declared] + [rx.literal(k) for k in sorted(o.forbidden) if k not in declared]
            if all_free:
                regions.append((key_pos, [], ()))
            else:
                cur = [([], [])]  # (in-patterns idx, out-patterns idx)
                for i in range(len(pats)):
                    # a key matching patterns a and i: kept only when such keys exist (patterns
                    # are mostly disjoint, so the regions grow linearly rather than as 2**n)
                    cur = [(a + [i], b) for a, b in cur if len(pats) <= 6 or self._keys_exist(
                        key_pos + [pats[j][0] for j in a + [i]])] + [(a, b + [i]) for a, b in cur]
                    if len(cur) > MAX_KEY_REGIONS:
                        raise CompileBudgetError("patternProperties overlap in too many key regions")
                for ins, outs in cur:
                    refs = []
                    for i in ins:
                        refs.extend(pats[i][1])
                    for gi, g in enumerate(o.groups):
                        if not any(pats[i][2] == gi for i in ins) and g.additional is not None:
                            refs.extend(g.additional)
                    regions.append((key_pos + [pats[i][0] for i in ins], [pats[i][0] for i in outs], tuple(refs)))
            region_members = []
            for pos, negs, refs in regions:
                v = self.satisfiable_nt(list(refs))
                if v is None:
                    continue
                sym = self._key_region_terminal(pos, negs + excluded)
                if sym is not None:
                    region_members.append((sym, v))
        else:
            region_members = []
        witness_members = self._witness_members(o, members, member_refs, regions, excluded)
        if witness_members is None:
            return None
        return self._object_from_members(o, members, region_members, witness_members)

    def _witness_implied(self, o: ObjC, witness) -> bool:
        """Every object satisfying ``o`` satisfies the witness: one alternative fits a required key
        (its literal, or its key regexes) whose declared values all satisfy the alternative's
        value schemas. The negated branches of a discriminated oneOf ("kind" is "a" here, so not
        "b" there) are of this form; dropping them keeps the witness count at what the object
        really has to track."""
        for key_res, excluded_res, value_refs, lit in witness:
            for k in sorted(o.required):
                if lit is not None:
                    if k != lit or excluded_res:
                        continue
                elif not (all(_fullmatch(r, k) for r in key_res) and not any(_fullmatch(r, k) for r in excluded_res)):
                    continue
                declared = [r for g in o.groups for r in g.props.get(k, ())]
                if all(self._values_imply(declared, ref) for ref in value_refs):
                    return True
        return False

    def _alternative_possible(self, o: ObjC, alt) -> bool:
        """Some key of an object satisfying ``o`` may fit the alternative (conservative: True
        unless its literal key is forbidden or declared with values disjoint from the
        alternative's, or ``o`` is closed and no declared key fits)."""
        key_res, excluded_res, value_refs, lit = alt

        def value_possible(k):
            declared = [r for g in o.groups for r in g.props.get(k, ())]
            return not (declared and value_refs and self._values_disjoint(declared, list(value_refs)))

        if lit is not None:
            return not self._forbids_key(o, lit) and value_possible(lit)
        closed = any(not g.patterns and g.additional is not None
                     and any(isinstance(r, Loc) and r.schema is False for r in g.additional) for g in o.groups)
        if not closed:
            return True
        keys = {k for g in o.groups for k in g.props} | set(o.required)
        return any(all(_fullmatch(r, k) for r in key_res) and not any(_fullmatch(r, k) for r in excluded_res)
                   and not self._forbids_key(o, k) and value_possible(k) for k in keys)

    def _values_imply(self, declared: list, ref) -> bool:
        """Every value satisfying all of ``declared`` satisfies ``ref`` (conservative)."""
        if isinstance(ref, Loc):
            return ref.schema is True or (isinstance(ref.schema, dict) and not any(
                k in VALIDATION_KEYWORDS for k in ref.schema))
        if isinstance(ref, NegLoc) and ref.only is None:
            return self._values_disjoint(declared, [ref.loc])
        return False

    def _keys_exist(self, positives) -> bool:
        """Some key matches every one of these regexes."""
        key = ("keys_exist", tuple(positives))
        if key not in self._emit_memo:
            try:
                self._emit_memo[key] = len(positives) < 2 or not cpdfa.combination_is_empty(list(positives))
            except CompileBudgetError:
                self._emit_memo[key] = True  # undecided: keep the region (an empty one is dropped later)
        return self._emit_memo[key]

    def _witness_members(self, o: ObjC, members, member_refs, regions, excluded) -> list | None:
        """Members that satisfy a set of ``o.witnesses`` at once: (bitmask of witnesses, key symbol,
        value nonterminal, declared key or None). A member satisfies a witness through one of its
        alternatives: per set, one alternative of each witness is chosen. None when some witness
        cannot be satisfied."""
        n = len(o.witnesses)
        if not n:
            return []
        if n > MAX_WITNESSES:
            raise CompileBudgetError(f"more than {MAX_WITNESSES} 'some member' constraints on one object")
        out: list = []
        seen: set = set()

        def add(item):
            if item not in seen:
                seen.add(item)
                out.append(item)

        for mask in range(1, 1 << n):
            ws = [o.witnesses[i] for i in range(n) if mask >> i & 1]
            for k, (kt, _) in members.items():
                options = [[a for a in w if _alternative_matches(a, k)] for w in ws]
                for combo in _choices(options):
                    v = self.satisfiable_nt(member_refs[k] + [r for a in combo for r in a[2]])
                    if v is not None:
                        add((mask, kt, v, k))
            # undeclared keys: only alternatives over key regexes (a literal key is declared)
            options = [[a for a in w if a[3] is None] for w in ws]
            for combo in _choices(options):
                pos = [r for a in combo for r in a[0]]
                neg = [r for a in combo for r in a[1]]
                refs = [r for a in combo for r in a[2]]
                for rpos, rneg, rrefs in regions:
                    v = self.satisfiable_nt(list(rrefs) + refs)
                    if v is None:
                        continue
                    sym = self._key_region_terminal(list(rpos) + pos, list(rneg) + excluded + neg)
                    if sym is not None:
                        add((mask, sym, v, None))
        covered = 0
        for mask, _, _, _ in out:
            covered |= mask
        return out if covered == (1 << n) - 1 else None

    def _names_regex(self, dnf, pointer) -> rx.Regex | None:
        parts = []
        for c in dnf:
            if c.nt is not None:
                self.unsupported(pointer, "propertyNames", "recursive propertyNames")
                return rx.star(rx.any_char())
            if c.enum is not None:
                parts.extend(rx.literal(v) for v in c.enum if isinstance(v, str) and self.value_allowed(v, c))
                continue
            if "string" not in c.types:
                continue
            s = c.str
            pos = list(s.patterns) + [rx.repeat(rx.any_char(), s.min_len, s.max_len)]
            neg = list(s.negative) + [rx.literal(v) for v in s.excluded]
            d = cpdfa.combine(pos, neg)
            # a regex where it is small; else the automaton itself as a regex leaf ("^[a-z0-9_-]{1,128}$"
            # has no small regex once intersected, but a 130-state automaton)
            r = d.to_regex(max_nodes=3000)
            parts.append(r if r is not None else d.to_automaton())
        return rx.alt(*parts) if parts else None

    def _key_region_terminal(self, positives, negatives) -> str | None:
        key = ("keyre", tuple(positives), tuple(negatives))
        if key in self._emit_memo:
            return self._emit_memo[key]
        if len(positives) == 1 and not negatives and not _has_automaton(positives[0]):
            r = positives[0]
        else:
            free = all(p == _ANY_STRING for p in positives)
            texts = [rx.literal_text(n) for n in negatives] if free else None
            too_large = False
            if texts is not None and None not in texts and not any(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t):
                # "any key but the declared ones", straight from the keys (~5x faster)
                try:
                    auto = spelling.keys_except_automaton(tuple(sorted(set(texts))))
                    too_large = len(auto.accepting) > MAX_KEY_AUTOMATON_STATES
                except CompileBudgetError:
                    too_large = True
                if not too_large:
                    sym = self._emit_memo[key] = self._key_then_colon(self.b.terminal(auto))
                    return sym
            d = cpdfa.combine(positives, negatives)
            if d.is_empty():
                self._emit_memo[key] = None
                return None
            # the spelling automaton straight from the code-point DFA (spelling.py): building the
            # byte DFA from the quoted regex instead took 15-45 ms per region (~7,000 positions)
            sym = None if too_large else self._key_region_automata(d)
            if sym is None:
                # e.g. "any key but these 150 declared ones": right-linear rules, then the colon
                body = self._dfa_rules(d, True)
                sym = self.b.fresh("key")
                self.b.rule(sym, [(body, self.b.terminal(self.colon_re, "COLON"))])
            self._emit_memo[key] = sym
            return sym
        sym = self._key_then_colon(self.b.terminal(_quote(r, self._quote_mode)))
        self._emit_memo[key] = sym
        return sym

    def _key_region_automata(self, d: cpdfa.Dfa) -> str | None:
        """One terminal for the keys of code-point DFA ``d`` (None: too large, use rules)."""
        try:
            auto = spelling.quoted_automaton_cached(d)
        except CompileBudgetError:
            return None
        if len(auto.accepting) > MAX_KEY_AUTOMATON_STATES:
            return None
        return self._key_then_colon(self.b.terminal(auto))

    def _object_from_members(self, o: ObjC, members, region_members, witness_members=()) -> str:
        key = ("obj", tuple(sorted(members.items())), tuple(region_members), o.required, o.min_props, o.max_props,
               o.dep_required, tuple(witness_members))
        if key in self._emit_memo:
            return self._emit_memo[key]
        name = self.b.fresh("object")
        self._emit_memo[key] = name
        body = self.members_machine(members, o.required, region_members, o.min_props, o.max_props, o.dep_required,
                                    o.pointer, witness_members)
        self.b.rule(name, [(self.LBRACE, body, self.RBRACE)])
        return name

    def members_machine(self, members: dict, required, region_members, min_props, max_props, deps, pointer,
                        witness_members=()) -> str:
        """Nonterminal for the member list: any order, required keys present, tracked keys at most once,
        and (``witness_members``) for each witness some member satisfying it."""
        n_wit = 0
        for mask, _, _, _ in witness_members:
            n_wit = max(n_wit, mask.bit_length())
        all_wit = (1 << n_wit) - 1
        dep_keys = set()
        for k, ds in deps:
            if k in members:
                dep_keys |= {k} | set(ds)
        keys = list(members)
        must = set(required) | dep_keys
        limit = self.opt.max_tracked_keys
        if n_wit and self.opt.property_order == "schema" and len(keys) > limit:
            self.unsupported(pointer, "not", "'some member' constraints with property_order='schema' on large objects")
        if self.opt.property_order == "schema" and len(keys) > limit:
            return self._ordered_members(members, required, region_members, min_props, max_props, deps, pointer)
        if not deps and not min_props and max_props is None and not n_wit and (
                len(keys) > limit and len(must) > limit):
            # many required keys: one nonterminal per set of keys seen is exponential, but a text
            # visits only a chain of them, so the parser builds them as it goes (a rule family)
            return self._lazy_members(members, [k for k in keys if k in must], region_members)
        if len(keys) <= limit:
            tracked = keys
        elif len(must) <= max(limit, self.opt.max_tracked_required):
            tracked = [k for k in keys if k in must]
        elif self.opt.property_order == "schema":
            return self._ordered_members(members, required, region_members, min_props, max_props, deps, pointer)
        elif not min_props and max_props is None and not n_wit:
            # dependencies on top of many required keys: the family checks them where the list ends
            return self._lazy_members(members, [k for k in keys if k in must], region_members, required, deps)
        else:
            raise CompileBudgetError(
                f"object at {pointer or '#'} has {len(must)} required keys; any-order tracking is limited to "
                f"{max(limit, self.opt.max_tracked_required)} (raise max_tracked_required or use "
                f"property_order='schema')")
        if self.opt.property_order == "schema" and len(keys) > limit:
            return self._ordered_members(members, required, region_members, min_props, max_props, deps, pointer)
        untracked = [members[k] for k in keys if k not in tracked] + list(region_members)
        any_untracked = None
        if untracked:
            any_untracked = self.b.fresh("member")
            self.b.rule(any_untracked, [(kt, v) for kt, v in untracked])
        # witness-satisfying members: per tracked key, and one nonterminal per mask for the rest
        tracked_wit: dict[str, list] = {}
        untracked_wit: dict[int, list] = {}
        for mask, kt, v, k in witness_members:
            if k is not None and k in tracked:
                tracked_wit.setdefault(k, []).append((mask, kt, v))
            else:
                untracked_wit.setdefault(mask, []).append((kt, v))
        untracked_wit_nt = {}
        for mask, alts_ in untracked_wit.items():
            untracked_wit_nt[mask] = self.b.fresh("witness")
            self.b.rule(untracked_wit_nt[mask], alts_)
        count_cap = max(min_props, (max_props + 1) if max_props is not None else 0)
        eager = (1 << len(tracked)) * (1 << n_wit) * 2 * (len(tracked) + 1 + len(witness_members))
        budget = self.opt.eager_key_set_alternatives
        budget = self.opt.max_rules // 2 - self.b.n_alternatives if budget is None else budget
        if not min_props and max_props is None and (not n_wit or not deps) and (len(tracked) >= LAZY_KEY_SETS_FROM or n_wit) \
                and eager > budget:
            # many object variants (negated oneOf branches, each tracking its witnesses): past
            # half the rule budget, key sets are built as the parser reaches them
            return self._key_set_family(members, tracked, any_untracked, required, deps, n_wit,
                                        tracked_wit, untracked_wit_nt)
        states: dict = {}
        todo = []

        def state(seen: frozenset, started: bool, count: int, wit: int) -> str:
            k = (seen, started, min(count, count_cap), wit)
            if k not in states:
                if len(states) > (1 << limit) * 4 * max(1, count_cap + 1) * (1 << n_wit):
                    raise CompileBudgetError("object key-set state budget exceeded")
                states[k] = self.b.fresh("members")
                todo.append(k)
            return states[k]

        root = state(frozenset(), False, 0, 0)
        while todo:
            seen, started, count, wit = todo.pop()
            nm = states[(seen, started, count, wit)]
            alts = []
            ok = all(r in seen for r in required) and count >= min_props and wit == all_wit
            ok = ok and all(set(ds) <= seen for k, ds in deps if k in seen)
            if ok:
                alts.append(())
            if max_props is None or count < max_props:
                sep = (self.COMMA,) if started else ()
                for k in tracked:
                    if k not in seen:
                        kt, v = members[k]
                        alts.append(sep + (kt, v, state(seen | {k}, True, count + 1, wit)))
                        for mask, wkt, wv in tracked_wit.get(k, ()):
                            if wit | mask != wit:
                                alts.append(sep + (wkt, wv, state(seen | {k}, True, count + 1, wit | mask)))
                if any_untracked is not None:
                    alts.append(sep + (any_untracked, state(seen, True, count + 1, wit)))
                for mask, wnt in untracked_wit_nt.items():
                    if wit | mask != wit:
                        alts.append(sep + (wnt, state(seen, True, count + 1, wit | mask)))
            self.b.rule(nm, alts or [(self.NEVER,)])
        self._check_budget()
        return root

    def _key_set_family(self, members, tracked, any_untracked, required, deps, n_wit, tracked_wit,
                        untracked_wit_nt) -> str:
        """``members_machine``'s key-set machine (no property-count bounds) as a ``KeySetFamily``."""
        bit = {k: 1 << i for i, k in enumerate(tracked)}
        dep_masks = []
        for k, ds in deps:
            if k in bit:
                need = [bit.get(d) for d in ds]
                dep_masks.append((bit[k], -1 if None in need else sum(need)))
        family = KeySetFamily(
            self.b.fresh("keyset"), tuple((k, members[k][0], members[k][1]) for k in tracked), any_untracked,
            self.COMMA, sum(bit[k] for k in tracked if k in required), tuple(sorted(dep_masks)), n_wit,
            tuple(tuple(tracked_wit.get(k, ())) for k in tracked), tuple(sorted(untracked_wit_nt.items())))
        if not _key_set_can_finish(family, 0, 0):
            return self.b.rule(self.b.fresh("members"), [(self.NEVER,)])
        self.b.families[family.name] = family
        return KeySetFamily.member(family.name, 0, False, 0 if n_wit else None)

    def _lazy_members(self, members: dict, tracked: list, region_members, required=None, deps=()) -> str:
        """The key-set machine of ``members_machine`` as a ``KeySetFamily`` (no property-count
        bounds: then every member can still reach the end, as families require). ``required``
        (default: every tracked key) and dependencies (key -> keys it needs) decide where the list
        may end; a key whose dependencies cannot all be written (not declared) is never offered."""
        untracked = [members[k] for k in members if k not in tracked] + list(region_members)
        any_untracked = None
        if untracked:
            any_untracked = self.b.fresh("member")
            self.b.rule(any_untracked, [(kt, v) for kt, v in untracked])
        return self._key_set_family(members, tracked, any_untracked, tracked if required is None else required, deps,
                                    0, {}, {})

    def _ordered_members(self, members, required, region_members, min_props, max_props, deps, pointer) -> str:
        if deps or min_props or max_props is not None:
            self.unsupported(pointer, "dependentRequired/minProperties/maxProperties",
                             "not compiled together with property_order='schema' on large objects")
        keys = list(members)
        any_untracked = None
        if region_members:
            any_untracked = self.b.fresh("member")
            self.b.rule(any_untracked, [(kt, v) for kt, v in region_members])
        names = {}

        def st_(i, started):
            k = (i, started)
            if k not in names:
                names[k] = self.b.fresh("ordered")
            return names[k]

        for i in range(len(keys) + 1):
            for started in (False, True):
                alts = []
                sep = (self.COMMA,) if started else ()
                if i == len(keys):
                    alts.append(())
                else:
                    k = keys[i]
                    kt, v = members[k]
                    alts.append(sep + (kt, v, st_(i + 1, True)))
                    if k not in required:
                        alts.append((st_(i + 1, started),))
                if any_untracked is not None:
                    alts.append(sep + (any_untracked, st_(i, True)))
                self.b.rule(st_(i, started), alts)
        return st_(0, False)


@dataclass(frozen=True, eq=False)
class CountedStringFamily(ir.RuleFamily):
    """Member ``(state, count)``: the rest of a string read by a code-point automaton in ``state``
    after ``count`` characters, whose total length must end in [lo, hi]. Alternatives: the closing
    quote when accepting within the bounds, else one character class and the next member; only
    members from which an end is still reachable (``completable``, a packed [state][count] bit
    table) are referenced. Lazy: a sentence of n characters visits n members, where the listed
    product would hold states x (hi + 1)."""

    name: str
    edges: tuple  # per state: ((target state, character-class terminal), ...)
    accept: tuple
    completable: bytes
    lo: int
    hi: int
    close: str | None  # the closing-quote terminal (None: the string body alone)

    @staticmethod
    def member(name: str, state: int, count: int) -> str:
        return f"{name}{ir.FAMILY_SEPARATOR}{state}_{count}"

    def _completable(self, state: int, count: int) -> bool:
        i = state * (self.hi + 1) + count
        return bool((self.completable[i >> 3] >> (7 - (i & 7))) & 1)

    def nullable(self, key: str) -> bool:
        state, count = (int(x) for x in key.split("_"))
        return not self.close and bool(self.accept[state]) and self.lo <= count <= self.hi

    def alternatives(self, key: str) -> tuple[tuple[str, ...], ...]:
        state, count = (int(x) for x in key.split("_"))
        alts: list[tuple[str, ...]] = []
        if self.accept[state] and self.lo <= count <= self.hi:
            alts.append((self.close,) if self.close else ())
        if count < self.hi:
            for target, term in self.edges[state]:
                if self._completable(target, count + 1):
                    alts.append((term, self.member(self.name, target, count + 1)))
        return tuple(alts)

    def describe(self) -> str:
        import hashlib

        digest = hashlib.sha1(repr((self.edges, self.accept)).encode() + self.completable).hexdigest()
        return f"CountedStringFamily({len(self.edges)} states, {self.lo}..{self.hi}, {self.close!r}, {digest})"


@dataclass(frozen=True, eq=False)
class KeySetFamily(ir.RuleFamily):
    """Member ``(seen, started[, wit])`` of an object's member list: ``seen`` = bitmask of the
    tracked keys already written, ``wit`` = bitmask of the witnesses ("some member satisfies X",
    from negated object schemas) already satisfied. Any order; each tracked key once; the list may
    end once every required tracked key is seen and every witness satisfied; untracked keys
    (``any_untracked``) anywhere, any number of times. With witnesses, only members from which
    the end stays reachable are offered (``_key_set_can_finish``): no dead ends."""

    name: str
    tracked: tuple  # (key, key terminal, value symbol) per tracked key
    any_untracked: str | None
    comma: str
    required_mask: int = -1  # tracked keys the list must hold (-1: all of them)
    deps: tuple = ()  # (key bit, bits of the keys it needs; -1: some cannot be written)
    n_witness: int = 0
    tracked_witness: tuple = ()  # per tracked key: ((witness mask, key terminal, value symbol), ...)
    untracked_witness: tuple = ()  # ((witness mask, member symbol), ...) for undeclared keys

    @staticmethod
    def member(name: str, seen: int, started: bool, wit: int | None = None) -> str:
        tail = "" if wit is None else f"_{wit:x}"
        return f"{name}{ir.FAMILY_SEPARATOR}{seen:x}_{int(started)}{tail}"

    def _may_end(self, seen: int, wit: int | None) -> bool:
        """The member list may end here: every required key seen, dependencies met, witnesses done."""
        must = (1 << len(self.tracked)) - 1 if self.required_mask == -1 else self.required_mask
        return seen & must == must and all(not seen & k or (need != -1 and seen & need == need)
                                           for k, need in self.deps) \
            and (wit is None or wit == (1 << self.n_witness) - 1)

    def nullable(self, key: str) -> bool:
        parts = key.split("_")
        return self._may_end(int(parts[0], 16), int(parts[2], 16) if len(parts) > 2 else None)

    def alternatives(self, key: str) -> tuple[tuple[str, ...], ...]:
        parts = key.split("_")
        seen, started = int(parts[0], 16), parts[1] == "1"
        wit = int(parts[2], 16) if len(parts) > 2 else None
        alts: list[tuple[str, ...]] = []
        if self._may_end(seen, wit):
            alts.append(())
        sep = (self.comma,) if started else ()
        blocked = 0
        for k, need in self.deps:
            if need == -1:
                blocked |= k  # the key needs one that is never written: it is never written either
        if wit is None:
            for i, (_, kt, v) in enumerate(self.tracked):
                if not (seen >> i) & 1 and not (blocked >> i) & 1:
                    alts.append(sep + (kt, v, self.member(self.name, seen | (1 << i), True)))
            if self.any_untracked is not None:
                alts.append(sep + (self.any_untracked, self.member(self.name, seen, True)))
            return tuple(alts)
        for i, (_, kt, v) in enumerate(self.tracked):
            if (seen >> i) & 1:
                continue
            now = seen | (1 << i)
            if _key_set_can_finish(self, now, wit):
                alts.append(sep + (kt, v, self.member(self.name, now, True, wit)))
            for mask, wkt, wv in self.tracked_witness[i]:
                if wit | mask != wit and _key_set_can_finish(self, now, wit | mask):
                    alts.append(sep + (wkt, wv, self.member(self.name, now, True, wit | mask)))
        if self.any_untracked is not None:
            alts.append(sep + (self.any_untracked, self.member(self.name, seen, True, wit)))
        for mask, nt in self.untracked_witness:
            if wit | mask != wit and _key_set_can_finish(self, seen, wit | mask):
                alts.append(sep + (nt, self.member(self.name, seen, True, wit | mask)))
        return tuple(alts)

    def describe(self) -> str:
        return (f"KeySetFamily({self.tracked!r}, {self.any_untracked!r}, {self.comma!r}, {self.required_mask}, "
                f"{self.deps!r}, {self.n_witness}, {self.tracked_witness!r}, {self.untracked_witness!r})")

    def required_symbols(self) -> tuple[str, ...]:
        must = self.required_mask
        return tuple(s for i, (_, kt, v) in enumerate(self.tracked) if must == -1 or (must >> i) & 1 for s in (kt, v))


@lru_cache(maxsize=1 << 16)
def _key_set_can_finish(family: KeySetFamily, seen: int, wit: int) -> bool:
    """Whether a member list with these tracked keys written and witnesses satisfied can still end:
    the unwritten keys (one witness combination each, or none) and the undeclared-key witness
    members (any number) must cover the missing witnesses. Required keys can always be written
    (families with witnesses have no dependencies), so they need no check. A subset DP over the
    missing witness bits (at most MAX_WITNESSES of them)."""
    missing = ((1 << family.n_witness) - 1) & ~wit
    if not missing:
        return True
    free = 0
    for mask, _ in family.untracked_witness:
        free |= mask & missing
    reach = {free}
    for i, options in enumerate(family.tracked_witness):
        if (seen >> i) & 1 or not options:
            continue
        reach |= {c | (mask & missing) for c in reach for mask, _, _ in options}
        if missing in reach:
            return True
    return missing in reach


def _quote(r: rx.Regex, quote) -> rx.Regex:
    return rx.seq(rx.literal('"'), st.encode_for(quote, r), rx.literal('"')) if quote else r


class _Multi(Conj):
    """Placeholder for an intersection that expanded into several alternatives."""

    def __init__(self, items):
        super().__init__()
        self.items = items


def _bundled_metaschema(uri: str):
    """A JSON Schema meta-schema (or vocabulary) document from ``jsonschema_specifications``."""
    try:
        import jsonschema_specifications
    except ImportError:
        return None
    for candidate in (uri, uri.rstrip("#"), uri.rstrip("#") + "#"):
        try:
            return jsonschema_specifications.REGISTRY.contents(candidate)
        except Exception:
            continue
    return None


def _declares_dynamic_anchor(schema, name: str) -> bool:
    """``$dynamicAnchor: name`` somewhere in this schema resource (not inside embedded resources)."""
    stack = [(schema, True)]
    while stack:
        node, top = stack.pop()
        if isinstance(node, dict):
            if not top and "$id" in node:
                continue
            if node.get("$dynamicAnchor") == name:
                return True
            stack.extend((v, False) for k, v in node.items() if k not in ("enum", "const"))
        elif isinstance(node, list):
            stack.extend((v, False) for v in node)
    return False


def _negated_ref(r):
    """The ref for "not r" (a double negation cancels)."""
    if isinstance(r, NegLoc):
        if r.only is not None:  # "not (r.loc on these types)" is a union: no single ref says it
            raise CompileBudgetError("negation of a type-restricted negation is not compiled")
        return r.loc
    return NegLoc(r)


def _flatten(dnf):
    out = []
    for c in dnf:
        if isinstance(c, _Multi):
            out.extend(c.items)
        else:
            out.append(c)
    return out


def _is_trivial(c: Conj) -> bool:
    return (c.nt is None and c.types == frozenset(TYPES) and c.enum is None and c.num == NumC() and c.str == StrC()
            and not c.arr.groups and c.arr.min_items == 0 and c.arr.max_items is None and not c.arr.contains
            and not c.arr.unique and not c.obj.groups and not c.obj.required and not c.obj.forbidden
            and not c.obj.names and c.obj.min_props == 0 and c.obj.max_props is None and not c.obj.dep_required
            and not c.obj.witnesses
            and c.bools == frozenset({True, False}) and c.null_ok)


MAX_WITNESS_CHOICES = 256  # alternative combinations per set of witnesses one member satisfies


def _integer_bounds(n: NumC) -> tuple:
    """Inclusive integer bounds of an integer record (None: unbounded)."""
    lo = hi = None
    if n.lo is not None:
        lo = math.ceil(n.lo)
        if n.lo_strict and lo == n.lo:
            lo += 1
    if n.hi is not None:
        hi = math.floor(n.hi)
        if n.hi_strict and hi == n.hi:
            hi -= 1
    return (int(lo) if lo is not None else None, int(hi) if hi is not None else None)


def _alternative_matches(alt, key: str) -> bool:
    pos, neg, _, literal = alt
    if literal is not None:
        return literal == key
    return all(_fullmatch(r, key) for r in pos) and not any(_fullmatch(r, key) for r in neg)


def _choices(options: list[list]):
    """One element of each list (nothing when a list is empty), budgeted."""
    total = 1
    for opt in options:
        total *= len(opt)
    if total > MAX_WITNESS_CHOICES:
        raise CompileBudgetError("'some member' constraints combine into too many member variants")
    return itertools.product(*options) if total else ()


def _is_true_refs(refs) -> bool:
    return all(isinstance(r, Loc) and (r.schema is True or r.schema == {}) for r in refs)


def _list(v, loc: Loc, kw: str) -> list:
    if not isinstance(v, list) or not v:
        raise SchemaError(f"{kw} must be a non-empty array", loc.pointer + "/" + kw)
    return v


def _dec(v, pointer: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SchemaError("expected a number", pointer)
    return to_decimal(v)


def _nonneg(v, pointer: str) -> int:
    if isinstance(v, float) and v == int(v):
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise SchemaError("expected a non-negative integer", pointer)
    return v


_FULLMATCH_CACHE: dict = {}


def _fullmatch(regex: rx.Regex, text: str) -> bool:
    import re
    pat = _FULLMATCH_CACHE.get(regex)
    if pat is None:
        pat = _FULLMATCH_CACHE[regex] = re.compile(rx.to_python_regex(regex), re.S)
    return pat.fullmatch(text) is not None


def _length_bounds(r: rx.Regex) -> tuple[int, int | None]:
    if isinstance(r, rx.Chars):
        return 1, 1
    if isinstance(r, rx.Seq):
        lo, hi = 0, 0
        for i in r.items:
            a, b = _length_bounds(i)
            lo += a
            hi = None if hi is None or b is None else hi + b
        return lo, hi
    if isinstance(r, rx.Alt):
        if not r.items:
            return 0, 0
        bs = [_length_bounds(i) for i in r.items]
        return min(b[0] for b in bs), (None if any(b[1] is None for b in bs) else max(b[1] for b in bs))
    if isinstance(r, rx.Repeat):
        a, b = _length_bounds(r.item)
        return a * r.min, (None if r.max is None or b is None else b * r.max)
    raise TypeError(r)


def _length_implied(r: rx.Regex, lo: int, hi: int | None) -> bool:
    a, b = _length_bounds(r)
    return a >= lo and (hi is None or (b is not None and b <= hi))


_MULTIPLE_CACHE: dict = {}


COMBINATORS = frozenset({"allOf", "anyOf", "oneOf", "not"})
MAX_FINITE_CANDIDATES = 1000
MAX_COUNTED_CELLS = 4_000_000  # (automaton state, length) pairs a counted string may tabulate


def _mentions(schema, keywords) -> bool:
    """Whether any (sub)schema object in ``schema`` has one of ``keywords`` as a key."""
    if isinstance(schema, dict):
        return any(k in schema for k in keywords) or any(_mentions(v, keywords) for v in schema.values())
    if isinstance(schema, list):
        return any(_mentions(v, keywords) for v in schema)
    return False
MAX_ALGEBRA_LENGTH = 256  # longer length bounds stay on the DNF path (chunked long strings)
NON_STRING_TYPES = frozenset(TYPES) - {"string", "integer"}


def _has_automaton(node: rx.Regex) -> bool:
    """Whether a regex has an ``rx.Automaton`` leaf (JSON quoting takes plain regexes only)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, rx.Automaton):
            return True
        if isinstance(n, (rx.Seq, rx.Alt)):
            stack.extend(n.items)
        elif isinstance(n, rx.Repeat):
            stack.append(n.item)
    return False


def _tree_regexes(node, out: list) -> None:
    kind = node[0]
    if kind in ("str", "not-str"):
        out.append(node[1])
    elif kind == "lits":
        out.extend(rx.literal(v) for v in node[1])
    elif kind in ("and", "or", "one"):
        for sub in node[1]:
            _tree_regexes(sub, out)
    elif kind == "not":
        _tree_regexes(node[1], out)


def _eval_string_tree(node, atoms: "cpdfa.Atoms") -> tuple[frozenset, "cpdfa.Dfa"]:
    """(other JSON types accepted, automaton of the strings accepted) of a string-algebra tree."""
    every = cpdfa.Dfa.from_regex(rx.star(rx.any_char()), atoms)
    kind = node[0]
    if kind == "types":
        return node[1], every if node[2] else every.complement()
    if kind == "str":
        return NON_STRING_TYPES, cpdfa.Dfa.from_regex(node[1], atoms)
    if kind == "not-str":
        return NON_STRING_TYPES, cpdfa.Dfa.from_regex(node[1], atoms).complement()
    if kind == "lits":
        return frozenset(), cpdfa.Dfa.from_regex(rx.alt(*(rx.literal(v) for v in node[1])), atoms)
    if kind == "not":
        others, strings = _eval_string_tree(node[1], atoms)
        return NON_STRING_TYPES - others, strings.complement()
    if kind == "and":
        others, strings = NON_STRING_TYPES, every
        for sub in node[1]:
            o, d = _eval_string_tree(sub, atoms)
            others, strings = others & o, strings.product(d, both=True)
        return others, strings
    if kind == "or":
        others, strings = frozenset(), every.complement()
        for sub in node[1]:
            o, d = _eval_string_tree(sub, atoms)
            others, strings = others | o, strings.product(d, both=False)
        return others, strings
    # "one": exactly one branch holds; track (none holds, exactly one holds)
    none_o, one_o = NON_STRING_TYPES, frozenset()
    none_s, one_s = every, every.complement()
    for sub in node[1]:
        o, d = _eval_string_tree(sub, atoms)
        one_o, none_o = (one_o - o) | (none_o & o), none_o - o
        not_d = d.complement()
        one_s = one_s.product(not_d, both=True).product(none_s.product(d, both=True), both=False)
        none_s = none_s.product(not_d, both=True)
    return one_o, one_s


MAX_LISTED_MULTIPLES = 2000
# digit-automaton states for multipleOf k * 10^-j (remainders x phases): larger ones are refused or listed
MAX_MULTIPLE_STATES = 1000


def _listed_multiples(n: NumC) -> list[Decimal] | None:
    """Every number in n's (bounded) range that is a multiple of all of n's multipleOf values (and an
    integer when n is), or None when there are more than MAX_LISTED_MULTIPLES. Multiples of a and of
    b are exactly the multiples of lcm(a, b) (for rationals: lcm of numerators over gcd of
    denominators in lowest terms); a decimal's denominator divides a power of ten, so every listed
    value is a finite decimal."""
    from fractions import Fraction

    step = Fraction(1) if n.integer else None
    for m, _ in n.multiple_of:
        f = Fraction(m)
        step = f if step is None else Fraction(math.lcm(step.numerator, f.numerator), math.gcd(step.denominator, f.denominator))
    lo, hi = Fraction(n.lo), Fraction(n.hi)
    first, last = math.ceil(lo / step), math.floor(hi / step)
    if n.lo_strict and first * step == lo:
        first += 1
    if n.hi_strict and last * step == hi:
        last -= 1
    if last - first + 1 > MAX_LISTED_MULTIPLES:
        return None
    values = []
    for t in range(first, last + 1):
        v = t * step
        with decimal.localcontext() as ctx:  # exact: the denominator divides a power of ten
            ctx.prec = len(str(abs(v.numerator))) + 4 * len(str(v.denominator)) + 4
            values.append(Decimal(v.numerator) / Decimal(v.denominator))
    return values


def _multiple_dfa_regex(m: Decimal) -> "rx.Regex | cpdfa.Dfa | None":
    """Plain decimal spellings of multiples of m (any sign), as a regex or a code-point DFA; None
    when m's numerator is too large."""
    if m in _MULTIPLE_CACHE:
        return _MULTIPLE_CACHE[m]
    sign, digits, exp = m.normalize().as_tuple()
    k = int("".join(map(str, digits)))
    j = -exp if exp < 0 else 0
    if exp > 0:
        k *= 10 ** exp
    if k * (j + 1) > MAX_MULTIPLE_STATES:
        _MULTIPLE_CACHE[m] = None
        return None
    digit = rx.char_range("0", "9")
    if k == 1:
        r = rx.seq(rx.optional(rx.literal("-")), rx.plus(digit), num.multiple_of_decimal_places(j))
    else:
        # states: remainder of the digits read so far (value * 10^j, mod k); fractional digits beyond j must be 0
        atoms = cpdfa.Atoms([rx.literal(ch) for ch in "0123456789-."])
        ids = {c: atoms.of_class(((ord(c), ord(c)),)) for c in "0123456789-."}
        n_atoms = len(atoms.intervals)
        # state layout: 0 start, 1 dead, then int(r), frac(i, r) for i in 1..j, zeros(r)
        index: dict = {}
        trans: list = []
        accept: list = []

        def sid(key):
            if key not in index:
                index[key] = len(trans)
                trans.append(None)
                accept.append(False)
            return index[key]

        sid(("start",))
        sid(("dead",))
        todo = [("start",), ("dead",)]
        done = set()
        while todo:
            key = todo.pop()
            if key in done:
                continue
            done.add(key)
            s = index[key]
            row = [index[("dead",)]] * n_atoms

            def go(c, nxt):
                for a in ids[c]:
                    row[a] = sid(nxt)
                todo.append(nxt)

            kind = key[0]
            if kind == "start":
                go("-", ("sign",))
                for dch in "0123456789":
                    go(dch, ("int", int(dch) % k))
            elif kind == "sign":
                for dch in "0123456789":
                    go(dch, ("int", int(dch) % k))
            elif kind == "int":
                r = key[1]
                accept[s] = (r * 10 ** j) % k == 0
                for dch in "0123456789":
                    go(dch, ("int", (r * 10 + int(dch)) % k))
                go(".", ("dot", r))
            elif kind == "dot":
                r = key[1]
                for dch in "0123456789":
                    nxt = ("frac", 1, (r * 10 + int(dch)) % k) if j >= 1 else ("zeros", r) if dch == "0" else ("dead",)
                    go(dch, nxt)
            elif kind == "frac":
                i, r = key[1], key[2]
                accept[s] = (r * 10 ** (j - i)) % k == 0
                for dch in "0123456789":
                    if i < j:
                        go(dch, ("frac", i + 1, (r * 10 + int(dch)) % k))
                    elif dch == "0":
                        go(dch, ("zeros", r))
            elif kind == "zeros":
                r = key[1]
                accept[s] = r % k == 0
                go("0", ("zeros", r))
            trans[s] = row
        dfa = cpdfa.Dfa(atoms, trans, accept).minimize()
        # a regex when it stays small; else the automaton itself (cpdfa.combine takes either):
        # divisibility by 7, 11, 13... has no small regex
        r = dfa.to_regex(max_nodes=20000) or dfa
    _MULTIPLE_CACHE[m] = r
    return r
