"""Unit tests of the JSON Schema compiler against independent oracles.

Numbers: regexes vs exact Decimal comparison over many spellings. Strings: encodings vs json.dumps
(both ensure_ascii modes). Schemas: grammar acceptance (lark Earley oracle) vs the ``jsonschema``
validator on hand-picked and brute-force-enumerated instances, in all three serializations.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import sys
from decimal import Decimal

import jsonschema
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_json_schema_oracle import LarkOracle  # noqa: E402

from corral.errors import CompileBudgetError, SchemaError, UnsupportedSchemaError  # noqa: E402
from corral.grammars import regex_ast as rx  # noqa: E402
from corral.grammars.json_schema import json_schema_to_grammar  # noqa: E402
from corral.grammars.json_schema import numbers as num  # noqa: E402
from corral.grammars.json_schema import strings as st  # noqa: E402


def fullmatch(regex, text):
    return re.fullmatch(rx.to_python_regex(regex), text, re.S) is not None


# ------------------------------------------------------------------ numbers

SPELLINGS = sorted({s for a in range(-25, 26) for f in ["", ".0", ".5", ".05", ".50", ".25", ".999", ".001", ".1"]
                    for s in [f"{a}{f}"] if re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?", s)}
                   | {"-0", "-0.0", "-0.25", "0.0001", "100", "99.99", "-100.5", "2.75", "2.7500"})
BOUNDS = [None, Decimal(0), Decimal(1), Decimal("1.5"), Decimal("-1.5"), Decimal("2.75"), Decimal("0.05"),
          Decimal("-0.05"), Decimal(-2), Decimal(10)]


@pytest.mark.parametrize("lo,hi", [(a, b) for a in BOUNDS for b in BOUNDS])
def test_number_range_matches_decimal_comparison(lo, hi):
    for lo_strict, hi_strict in itertools.product([False, True], repeat=2):
        regex = re.compile(rx.to_python_regex(num.number_range(lo, lo_strict, hi, hi_strict)), re.S)
        for s in SPELLINGS:
            v = Decimal(s)
            want = (lo is None or (v > lo if lo_strict else v >= lo)) and (hi is None or (v < hi if hi_strict else v <= hi))
            assert bool(regex.fullmatch(s)) == want, (lo, lo_strict, hi, hi_strict, s)


@pytest.mark.parametrize("lo,hi", [(0, None), (None, 5), (5, None), (1, 1), (0, 0), (None, None), (-3, -1),
                                   (100, 9999), (-17, 123)])
def test_integer_range_brute_force(lo, hi):
    regex = re.compile(rx.to_python_regex(num.integer_range(lo, hi)))
    for i in range(-1200, 12000):
        want = (lo is None or i >= lo) and (hi is None or i <= hi)
        assert bool(regex.fullmatch(str(i))) == want
        if abs(i) < 50:
            assert bool(regex.fullmatch(f"{i}.0")) == want


def test_integer_range_with_a_309_digit_bound_is_exact_and_linear():
    """A double's maximum (1.79769e+308, written by schema generators for every `double`) as an
    integer bound: each full length band is one bounded repeat, so the regex stays linear in
    the digit count (it was quadratic: 47k positions, past the automaton budget)."""
    rnd = __import__("random").Random(7)
    hi = 179769 * 10 ** 303
    regex = num.uint_range(0, hi)
    assert rx.position_count(regex) < 20 * len(str(hi))
    compiled = re.compile(rx.to_python_regex(regex))
    samples = [0, 1, 9, 10, hi, hi - 1, hi + 1, 10 ** 308, 10 ** 309, 2 * 10 ** 308, 18 * 10 ** 307]
    samples += [rnd.randrange(10 ** (n - 1), 10 ** n) for n in range(1, 311) for _ in range(3)]
    for i in samples:
        assert bool(compiled.fullmatch(str(i))) == (i <= hi), i
    assert not compiled.fullmatch("0" + str(hi)[1:])  # no leading zeros
    lo_bounded = re.compile(rx.to_python_regex(num.uint_range(12345, 10 ** 40)))
    for i in [12344, 12345, 99999, 10 ** 5, 10 ** 39 + 7, 10 ** 40, 10 ** 40 + 1] + [rnd.randrange(10 ** 41) for _ in range(200)]:
        assert bool(lo_bounded.fullmatch(str(i))) == (12345 <= i <= 10 ** 40), i


def test_decimal_literal_uses_json_equality():
    assert all(fullmatch(num.decimal_literal(Decimal(1)), s) for s in ["1", "1.0", "1.00"])
    assert not fullmatch(num.decimal_literal(Decimal(1)), "1.5")
    assert all(fullmatch(num.decimal_literal(Decimal(0)), s) for s in ["0", "-0", "0.0", "-0.0"])
    assert fullmatch(num.decimal_literal(Decimal("1.5")), "1.500") and not fullmatch(num.decimal_literal(Decimal("1.5")), "1.05")


# ------------------------------------------------------------------ strings

STRINGS = ["abc", 'a"b', "\n\t\x01", "é", "😀", "\\", "/", "\u2028", "", "ключ"]


@pytest.mark.parametrize("s", STRINGS)
def test_any_string_accepts_every_json_spelling(s):
    any_string = st.quoted(rx.star(rx.any_char()))
    for ensure_ascii in (True, False):
        assert fullmatch(any_string, json.dumps(s, ensure_ascii=ensure_ascii))
    assert fullmatch(st.literal_string(s), json.dumps(s)) and fullmatch(st.literal_string(s), json.dumps(s, ensure_ascii=False))


def test_string_encoding_rejects_invalid_json():
    any_string = st.quoted(rx.star(rx.any_char()))
    for bad in ['"\\ud800"', '"\n"', '"\\x41"', '"a', '"\\"']:
        assert not fullmatch(any_string, bad)
    assert fullmatch(st.literal_string("name"), '"n\\u0061me"')  # an escaped spelling of the same key


FORMAT_CASES = {
    "date": (["2020-02-29", "2000-02-29", "1999-12-31"], ["2021-02-29", "1900-02-29", "2020-04-31", "2020-1-01"]),
    "date-time": (["1963-06-19T08:30:06.283185Z", "1998-12-31T23:59:60Z", "2020-01-01t00:00:00+05:30"],
                  ["1998-12-31T22:59:60Z", "2020-01-01T00:00:00", "2020-01-01 00:00:00Z"]),
    "ipv4": (["192.168.0.1", "0.0.0.0"], ["256.0.0.1", "087.10.0.1", "1.2.3"]),
    "ipv6": (["::1", "1:2:3:4:5:6:7:8", "::ffff:192.168.0.1"], ["1:2:3:4:5:6:7:8:9", ":::", "12345::"]),
    "uuid": (["2eb8aa08-aa98-11ea-b4aa-73b441d16380"], ["2eb8aa08-aa98-11ea-b4aa-73b441d1638", "2eb8aa08aa98"]),
    "duration": (["P4DT12H30M5S", "P2W", "PT1M"], ["P", "PT1D", "P1Y2W"]),
    "email": (["joe.bloggs@example.com", '"joe bloggs"@example.com'], ["2962", "te..st@x.com", "a@b=c.com"]),
    "uri": (["http://example.com/a?b=c#d", "urn:isbn:0451450523", "http://[vF.a:b]/"], ["//foo", "http:// x", "\\\\WINDOWS"]),
    # RFC 3987: ucschar anywhere unreserved is, private use (U+E000...) in the query only, no ASCII widening
    "iri": (["http://ƒøø.ßår/?∂éœ=πîx#πîüx", "http://[2001:db8::1]/ключ", "mailto:пример@пример.рф", "x:?\ue000",
             "urn:𐌀:a"],
            ["/abc", "http://ex.com/ a", "http://ex.com/\ue000", "http://ex.com/#\ue000", "x:\ufffe",
             "http://[::1:é]/", "http://ex.com/\U0001fffe"]),
    "iri-reference": (["http://ƒøø.ßår/?∂éœ=πîx#πîüx", "//ƒøø.ßår/", "/âππ", "#ƒrägmênt", "", "ключ/значение"],
                      ["\\\\WINDOWS\\fileshare", "#ƒräg\\mênt", "a:b c", "x:y\x7f", "\u00a0x:y"]),
    "uri-template": (["http://example.com/dictionary/{term:1}/{term}", "", "{+var}", "{;x,y*}", "{a.b%41:9999}",
                      "a'b", "x\U0001F600{=op}", "{?q,page}&c=1"],
                     ["{}", "{a,}", "{v:0}", "{v:01}", "{v:10000}", "a b", "foo}bar", "{a..b}", "{var=def}",
                      "%4", "{x", "a\u0080b", "{-x}", "a\\b"]),
}


def _uri_template_reference(s: str) -> bool:
    """RFC 6570 section 2 read character by character (an oracle independent of the regex)."""
    hexdig = set("0123456789abcdefABCDEF")
    alnum = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    def literal_char(c):
        o = ord(c)
        if o < 0x80:  # the Test Suite counts the apostrophe as a literal
            return 0x20 < o < 0x7F and c not in '"%<>\\^`{|}'
        ranges = [(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF), (0xE1000, 0xEFFFD), (0xE000, 0xF8FF),
                  (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)] + [(p << 16, (p << 16) + 0xFFFD) for p in range(1, 14)]
        return any(a <= o <= b for a, b in ranges)

    def varname(name):
        if not name:
            return False
        for part in name.split("."):
            k = 0
            if not part:
                return False
            while k < len(part):
                if part[k] == "%":
                    if len(part) < k + 3 or part[k + 1] not in hexdig or part[k + 2] not in hexdig:
                        return False
                    k += 3
                elif part[k] in alnum or part[k] == "_":
                    k += 1
                else:
                    return False
        return True

    def varspec(spec):
        if spec.endswith("*"):
            return varname(spec[:-1])
        if ":" in spec:
            name, length = spec.split(":", 1)
            return varname(name) and length.isascii() and length.isdigit() and length[0] != "0" and len(length) <= 4
        return varname(spec)

    i = 0
    while i < len(s):
        c = s[i]
        if c == "{":
            j = s.find("}", i)
            if j < 0:
                return False
            body = s[i + 1:j]
            if body[:1] and body[0] in "+#./;?&=,!@|":
                body = body[1:]
            if not all(varspec(v) for v in body.split(",")):
                return False
            i = j + 1
        elif c == "%":
            if len(s) < i + 3 or s[i + 1] not in hexdig or s[i + 2] not in hexdig:
                return False
            i += 3
        elif literal_char(c):
            i += 1
        else:
            return False
    return True


def test_uri_template_against_a_reference_reader():
    regex = st.format_regex("uri-template")
    for s in FORMAT_CASES["uri-template"][0]:
        assert _uri_template_reference(s), s
    for s in FORMAT_CASES["uri-template"][1]:
        assert not _uri_template_reference(s), s
    alphabet = "{}a.,:*1%4+' 0|\u00e9"
    for n in range(5):
        for chars in itertools.product(alphabet, repeat=n):
            s = "".join(chars)
            assert fullmatch(st.format_regex("uri-template"), s) == _uri_template_reference(s), s
    for s in ["{x:9999}", "{x:1000}a", "{%4a.b_c*}", "\ue000\U0010fffd", "\ufdd0", "\U0001fffe", "{x}\x7f"]:
        assert fullmatch(regex, s) == _uri_template_reference(s), s


@pytest.mark.parametrize("fmt", sorted(FORMAT_CASES))
def test_formats_against_known_instances(fmt):
    good, bad = FORMAT_CASES[fmt]
    oracle = LarkOracle(json_schema_to_grammar({"type": "string", "format": fmt}).grammar)
    for s in good:  # both the \uXXXX-escaped and the raw UTF-8 spelling of non-ASCII
        assert oracle.accepts(json.dumps(s)) and oracle.accepts(json.dumps(s, ensure_ascii=False)), s
    for s in bad:
        assert not oracle.accepts(json.dumps(s)) and not oracle.accepts(json.dumps(s, ensure_ascii=False)), s


# ------------------------------------------------------------------ schemas vs jsonschema

def check(schema, instances, **options):
    """Every instance: grammar acceptance (3 serializations) == jsonschema validity."""
    oracle = LarkOracle(json_schema_to_grammar(schema, **options).grammar.expanded())
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(
        schema, format_checker=jsonschema.FormatChecker())
    for inst in instances:
        want = validator.is_valid(inst)
        for text in (json.dumps(inst), json.dumps(inst, separators=(",", ":")), json.dumps(inst, indent=2)):
            assert oracle.accepts(text) == want, (schema, text, want)


def test_properties_any_order_required_and_no_duplicates():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "null"}},
              "required": ["a", "c"], "additionalProperties": False}
    values = {"a": [1, "x"], "b": ["s", 2], "c": [None]}
    instances = []
    for keys in itertools.chain.from_iterable(itertools.permutations("abc", n) for n in range(4)):
        for vals in itertools.product(*(values[k] for k in keys)):
            instances.append(dict(zip(keys, vals)))
    check(schema, instances)
    oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
    assert not oracle.accepts('{"a": 1, "c": null, "a": 2}')  # tracked keys never repeat


def test_additional_and_pattern_properties_regions():
    schema = {"type": "object", "properties": {"id": {"type": "integer"}},
              "patternProperties": {"^x-": {"type": "string"}, "y$": {"type": "boolean"}},
              "additionalProperties": {"type": "null"}}
    insts = [{"id": 1}, {"id": "1"}, {"x-a": "s"}, {"x-a": 1}, {"ay": True}, {"ay": None}, {"x-y": "s"},
             {"x-y": True}, {"other": None}, {"other": 1}, {"id": 2, "x-1": "q", "zz": None}]
    check(schema, insts)


def test_escaped_key_is_the_same_key():
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False}
    oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
    assert oracle.accepts('{"n\\u0061me": "x"}') and not oracle.accepts('{"n\\u0061me": 1}')


def test_min_max_properties_and_dependent_required():
    schema = {"type": "object", "minProperties": 1, "maxProperties": 2, "dependentRequired": {"a": ["b"]}}
    insts = [{}, {"a": 1}, {"a": 1, "b": 2}, {"b": 1}, {"b": 1, "c": 2}, {"a": 1, "b": 2, "c": 3}]
    check(schema, insts)


def test_arrays_prefix_items_counts_contains():
    schema = {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "boolean"},
              "minItems": 1, "maxItems": 4, "contains": {"const": True}, "minContains": 1}
    insts = [[], [1], [1, "a"], [1, "a", True], [1, "a", False], [1, "a", False, True], [1, "a", True, True, True],
             ["a"], [1, 2, True]]
    check(schema, insts)
    check({"type": "array", "items": {"type": "integer"}}, [[], [1], [1, 2, 3], [1, "x"], list(range(30))])


def test_unique_items_over_finite_domains():
    check({"type": "array", "items": {"enum": ["a", "b", 1]}, "uniqueItems": True, "minItems": 1},
          [[], ["a"], ["a", "b"], ["a", "a"], ["b", 1, "a"], [1, 1.0], ["c"]])
    check({"type": "array", "items": {"type": "boolean"}, "uniqueItems": True}, [[], [True], [True, False], [True, True]])


def test_enum_const_json_equality():
    check({"enum": [1, "a", None, [1, {"k": True}], {"x": 1, "y": [2]}]},
          [1, 1.0, "a", None, [1, {"k": True}], {"y": [2], "x": 1}, {"x": 1}, True, 2, [1, {"k": 1}]])
    check({"const": False}, [False, 0, True, None])


def test_combinators():
    check({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 5}]},
          ["", "ab", "abc", 4, 5, 5.5, None])
    check({"oneOf": [{"type": "string"}, {"type": "integer"}]}, ["a", 1, 1.5, None])
    check({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                     {"properties": {"a": {"minimum": 3}, "b": {"type": "string"}}}]},
          [{"a": 3}, {"a": 2}, {"a": 3, "b": "x"}, {"a": 3, "b": 1}, {}, "x"])
    check({"not": {"type": "string"}}, ["a", 1, None, [1]])
    check({"not": {"type": "integer"}}, [1, 1.5, -2.25, 0, "x", None, 3.0])
    check({"type": "number", "not": {"multipleOf": 3}}, [0, 3, 4, 4.5, -6, 7, 9.0])
    # overlapping oneOf branches: exact through S_i AND NOT S_j
    check({"type": "object", "properties": {"a": {}, "b": {}}, "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
          [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 2}, {"c": 1}])
    check({"oneOf": [{"type": "number", "maximum": 3}, {"minimum": 2}]}, [1, 2, 3, 2.5, 4, "x", None])
    check({"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "pattern": "^a"}]},
          ["", "a", "abcd", "bcd", "abc"])
    check({"type": "object", "if": {"properties": {"k": {"const": "num"}}, "required": ["k"]},
           "then": {"properties": {"v": {"type": "number"}}}, "else": {"properties": {"v": {"type": "string"}}}},
          [{"k": "num", "v": 1}, {"k": "num", "v": "s"}, {"k": "str", "v": "s"}, {"k": "str", "v": 1}, {"v": "s"}, {"v": 1}])


def test_recursive_ref():
    tree = {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                                "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                               "required": ["v"], "additionalProperties": False}},
            "$ref": "#/$defs/node"}
    check(tree, [{"v": 1}, {"v": 1, "kids": [{"v": 2, "kids": []}, {"v": 3}]}, {"v": 1, "kids": [{}]}, {"kids": []}])


def test_numeric_keywords_via_schema():
    check({"type": "number", "exclusiveMinimum": 0, "maximum": 2.5}, [0, 0.0, 0.001, 1, 2.5, 2.51, -1])
    check({"type": "integer", "multipleOf": 3, "minimum": -7}, list(range(-12, 13)) + [3.0, 1.5])
    check({"type": "number", "multipleOf": 0.25}, [0.25, 0.5, 1, 0.3, -0.75, 1.125])
    check({"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 60},
          ["ab", "a", "AB", "a" * 60, "a" * 61, "abc1"])


def test_whitespace_modes():
    schema = {"type": "object", "properties": {"a": {"type": "array"}}}
    inst = {"a": [1, [2, {"b": None}]]}
    flexible = LarkOracle(json_schema_to_grammar(schema).grammar)
    for indent in (None, 2, 4, "\t"):
        assert flexible.accepts(json.dumps(inst, indent=indent))
    compact = LarkOracle(json_schema_to_grammar(schema, whitespace="compact").grammar)
    assert compact.accepts(json.dumps(inst, separators=(",", ":"))) and not compact.accepts(json.dumps(inst))
    fixed = LarkOracle(json_schema_to_grammar(schema, whitespace=(", ", ": ")).grammar)
    assert fixed.accepts(json.dumps(inst)) and not fixed.accepts(json.dumps(inst, indent=2))
    bounded = LarkOracle(json_schema_to_grammar(schema, max_whitespace=3).grammar)
    assert bounded.accepts('{"a":   []}') and not bounded.accepts('{"a":    []}')


# uniqueItems with positional items over a closed language: not compiled
UNIQUE_TUPLE = {"type": "array", "uniqueItems": True, "prefixItems": [{"type": "integer", "multipleOf": 3, "maximum": 3000}]}


def test_errors_and_lenient_report():
    with pytest.raises(SchemaError):
        json_schema_to_grammar({"type": "nonsense"})
    with pytest.raises(SchemaError):
        json_schema_to_grammar("{not json")
    with pytest.raises(UnsupportedSchemaError) as e:
        json_schema_to_grammar({"properties": {"a": UNIQUE_TUPLE,
                                               "b": {"pattern": "(a)\\1"}}})
    pointers = {(p, k) for p, k, _ in e.value.issues}
    assert ("/properties/a", "uniqueItems") in pointers and ("/properties/b", "pattern") in pointers
    res = json_schema_to_grammar(UNIQUE_TUPLE, lenient=True)
    assert res.report and res.report[0][1] == "uniqueItems"
    assert LarkOracle(res.grammar).accepts("[3, 3]")  # lenient: ignored (looser), and reported
    with pytest.raises(UnsupportedSchemaError):  # overlapping oneOf whose negation is not compiled
        json_schema_to_grammar({"oneOf": [{"type": "array", "uniqueItems": True}, {"maxItems": 1}]})


def test_overlapping_one_of_through_negated_items_is_exact():
    import jsonschema

    schema = {"oneOf": [{"items": {"type": "integer"}}, {"maxItems": 2}]}
    oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
    for inst in ([1, 2, 3], [1, 2], ["a"], ["a", "b", "c"], [], 5, "x", {"a": 1}, [1, "a", 2], [[1]]):
        want = jsonschema.Draft202012Validator(schema).is_valid(inst)
        assert oracle.accepts(json.dumps(inst)) == want, inst


def test_one_of_disjoint_on_objects_overlapping_elsewhere_is_exact():
    """Branches disjoint as objects (a required key the other forbids, or a discriminator) but both
    vacuous on other types: oneOf must then reject those other types."""
    import jsonschema

    for schema in (
        {"oneOf": [{"properties": {"a": {}}, "required": ["a"], "additionalProperties": False},
                   {"properties": {"b": {}}, "required": ["b"], "additionalProperties": False}]},
        {"oneOf": [{"properties": {"t": {"const": "x"}}, "required": ["t"]},
                   {"properties": {"t": {"const": "y"}}, "required": ["t"]}]},
        {"not": {"oneOf": [{"type": "integer"}, {"minimum": 2}]}},
    ):
        oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
        for inst in ({"a": 1}, {"b": 1}, {"a": 1, "b": 2}, {}, {"t": "x"}, {"t": "y"}, {"t": "z"}, "s", 1, 2.5, 3,
                     None, [1], True):
            want = jsonschema.Draft202012Validator(schema).is_valid(inst)
            assert oracle.accepts(json.dumps(inst)) == want, (schema, inst)


def test_budgets_raise_instead_of_running_away():
    many_required = {"type": "object", "required": [f"k{i}" for i in range(20)],
                     "properties": {f"k{i}": {"type": "integer"} for i in range(20)}}
    with pytest.raises(CompileBudgetError):  # with a property-count bound the key sets are built eagerly
        json_schema_to_grammar({**many_required, "maxProperties": 30})
    ordered = json_schema_to_grammar(many_required, property_order="schema")
    oracle = LarkOracle(ordered.grammar)
    inst = {f"k{i}": i for i in range(20)}
    assert oracle.accepts(json.dumps(inst))
    assert not oracle.accepts(json.dumps(dict(reversed(list(inst.items())))))
    with pytest.raises(CompileBudgetError):
        json_schema_to_grammar({"anyOf": [{"type": "integer", "minimum": i} for i in range(20)],
                                "allOf": [{"anyOf": [{"maximum": i} for i in range(20)]}]}, max_dnf=100)
    # the wall-clock budget: a combinator product that would take a while stops at the deadline,
    # naming where it was
    product = {"anyOf": [{"type": "integer", "minimum": i} for i in range(40)],
               "allOf": [{"anyOf": [{"maximum": i, "multipleOf": i + 1} for i in range(40)]}]}
    with pytest.raises(CompileBudgetError, match="took more than 0.001 s"):
        json_schema_to_grammar(product, max_seconds=0.001)


@pytest.mark.parametrize("schema", [
    {"multipleOf": 11},
    {"type": "integer", "multipleOf": 33, "minimum": -70, "maximum": 400},
    {"not": {"multipleOf": 7}},
    {"multipleOf": 1.3, "maximum": 20},
])
def test_multiple_of_without_a_small_regex_is_exact(schema):
    """Divisibility by 7, 11, 13... has no small regex: the remainder automaton is intersected as a DFA."""
    import jsonschema

    oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
    validator = jsonschema.Draft202012Validator(schema)
    for v in list(range(-80, 130)) + [x / 10 for x in range(-60, 60)] + ["5", None]:
        assert oracle.accepts(json.dumps(v)) == validator.is_valid(v), v


def _engine_accepts(compiled, tokenizer, text: str) -> bool:
    m = compiled.matcher()
    for t in tokenizer.encode(text, add_special_tokens=False):
        bits = m.next_token_bits()
        if not (int(bits[t >> 5]) >> (t & 31)) & 1:
            return False
        assert m.accept_token(t)
    return m.is_accepting()


@pytest.mark.parametrize("additional", [True, False])
def test_many_required_keys_any_order_through_the_rule_family(llama3_vocab, llama3_tokenizer, additional):
    """25 required keys in any order (2^25 key sets): the parser builds the key-set nonterminals it
    visits. Checked against jsonschema on shuffled, incomplete, duplicated and extended objects."""
    import random

    import jsonschema

    import corral

    n = 25
    schema = {"type": "object", "required": [f"k{i}" for i in range(n)], "additionalProperties": additional,
              "properties": {**{f"k{i}": {"type": "integer", "minimum": i} for i in range(n)},
                             "note": {"type": "string"}}}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)
    rnd = random.Random(additional)
    for trial in range(12):
        keys = [f"k{i}" for i in range(n)]
        rnd.shuffle(keys)
        inst = {k: int(k[1:]) + rnd.randint(0, 9) for k in keys}
        if trial % 3 == 1:
            inst["note"] = "x"
        if trial % 4 == 2:
            inst["extra"] = [1]
        cases = [inst, {k: v for k, v in inst.items() if k != keys[trial]},  # a required key missing
                 {**inst, keys[0]: -1}]  # a value out of range
        for case in cases:
            assert _engine_accepts(compiled, llama3_tokenizer, json.dumps(case)) == validator.is_valid(case), case
        # a required key written twice in place of a missing one (the count of members is right)
        without = {k: v for k, v in inst.items() if k != keys[1]}
        dup = json.dumps(without)[:-1] + f', "{keys[0]}": 50' + "}"
        assert not _engine_accepts(compiled, llama3_tokenizer, dup)


def test_rule_family_expands_to_the_eager_key_set_machine():
    """Forcing the family on a small object (max_tracked_keys=2): its expansion must accept exactly
    what jsonschema accepts, key orders included."""
    import itertools

    import jsonschema

    schema = {"type": "object", "required": ["a", "b", "c", "d"], "additionalProperties": False,
              "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}, "c": {"type": "null"},
                             "d": {"enum": [1, 2]}, "e": {"type": "string"}}}
    res = json_schema_to_grammar(schema, max_tracked_keys=2)
    assert res.grammar.families  # the lazy path is the one under test
    oracle = LarkOracle(res.grammar.expanded())
    validator = jsonschema.Draft202012Validator(schema)
    full = {"a": 1, "b": True, "c": None, "d": 2, "e": "x"}
    for r in range(3, 6):
        for keys in itertools.permutations(full, r):
            inst = {k: full[k] for k in keys}
            assert oracle.accepts(json.dumps(inst)) == validator.is_valid(inst), inst
    assert not oracle.accepts('{"a": 1, "a": 1, "b": true, "c": null, "d": 2}')


def test_rule_family_with_an_unsatisfiable_required_value_is_pruned(llama3_vocab, llama3_tokenizer):
    """A required key whose value can never be written makes the object impossible: the parser must
    not let the object start (no dead end), exactly as eager pruning would."""
    import corral

    props = {f"k{i}": {"type": "integer"} for i in range(11)}
    # an object that must contain itself: only the grammar's productivity analysis sees it is empty
    props["k11"] = {"$ref": "#/$defs/loop"}
    schema = {"anyOf": [{"type": "string"}, {"type": "object", "required": list(props), "properties": props}],
              "$defs": {"loop": {"type": "object", "required": ["x"], "properties": {"x": {"$ref": "#/$defs/loop"}}}}}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    assert compiled.grammar.families
    bits = compiled.matcher().next_token_bits()
    for text, allowed in (("{", False), ('"', True)):
        t = llama3_tokenizer.encode(text, add_special_tokens=False)[0]
        assert bool((int(bits[t >> 5]) >> (t & 31)) & 1) == allowed, text


@pytest.mark.parametrize("schema", [
    {"not": {"const": [1, "a"]}},
    {"not": {"enum": [{"a": 1}, {"a": 1, "b": [2]}, []]}},
    {"type": "array", "not": {"const": [[1], {"x": None}]}},
    {"not": {"_vendorKeyword": True, "type": "string"}},  # unknown keywords are not validation: ignored
])
def test_negated_compound_values_are_exact(schema):
    import jsonschema

    oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
    validator = jsonschema.Draft202012Validator(schema)
    for inst in ([1, "a"], [1, "b"], [1], [1, "a", 2], [], {"a": 1}, {"a": 2}, {"a": 1, "b": [2]}, {"a": 1, "b": [3]},
                 {"b": [2]}, {}, [[1], {"x": None}], [[1], {"x": 0}], [[2], {"x": None}], [[1], {"x": None}, 1],
                 5, "s", None):
        assert oracle.accepts(json.dumps(inst)) == validator.is_valid(inst), inst


OBJECT_INSTANCES = [{}, {"a": 1}, {"a": "x"}, {"b": 1}, {"b": "x"}, {"a": 1, "b": 2}, {"x1": 1}, {"x1": "s"},
                    {"a": 1, "x1": "s"}, {"A": 1}, {"ab": True}, {"a": 1, "b": "x", "c": None}, {"zz": [1]},
                    {"x2": 3, "x3": "y"}, 5, "s", [1], None]


@pytest.mark.parametrize("schema", [
    {"not": {"additionalProperties": False}},
    {"not": {"properties": {"a": {}}, "additionalProperties": False}},
    {"not": {"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}}},
    {"not": {"patternProperties": {"^x": {"type": "integer"}}}},
    {"not": {"patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False}},
    {"not": {"propertyNames": {"maxLength": 1}}},
    {"not": {"propertyNames": {"enum": ["a", "b"]}, "required": ["a"]}},
    {"not": {"additionalProperties": False, "propertyNames": {"pattern": "^[a-z]$"}}},
    {"properties": {"a": {"type": "integer"}}, "not": {"additionalProperties": {"type": "integer"}}},
    {"oneOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
               {"patternProperties": {"^[ab]$": {"type": "integer"}}}]},
    {"oneOf": [{"type": "object", "propertyNames": {"pattern": "^x"}}, {"type": "object", "maxProperties": 1}]},
    {"type": "object", "oneOf": [{"additionalProperties": {"type": "string"}},
                                 {"additionalProperties": {"type": "integer"}}]},
    # disjoint as objects by counting: two required keys vs at most one property
    {"oneOf": [{"required": ["a", "b"], "properties": {"a": {"type": "integer"}}},
               {"maxProperties": 1, "additionalProperties": {"type": "string"}}]},
])
def test_negated_member_constraints_are_exact(schema):
    """not additionalProperties / patternProperties / propertyNames: "some member breaks it"."""
    check(schema, OBJECT_INSTANCES)


MIXED_INSTANCES = [[], [1], ["a"], [1, "a"], [1, 2], [1, 2, 3], ["a", "b", 1], {}, {"a": 1}, {"a": 1, "b": 2},
                   {"b": 2}, {"a": "x", "c": 1}, {"a": 1, "c": 2}, "2024-01-01", "not a date", "", 5, None,
                   "12:00:00Z", "a@b.co"]


@pytest.mark.parametrize("schema", [
    {"not": {"contains": {"type": "integer"}}},
    {"not": {"contains": {"type": "integer"}, "minContains": 2}},
    {"not": {"contains": {"type": "integer"}, "minContains": 0, "maxContains": 1}},
    {"not": {"contains": {"type": "integer"}, "maxContains": 1}},
    {"not": {"format": "date"}},
    {"not": {"format": "email", "maxLength": 3}},
    {"not": {"format": "some-unknown-format"}},
    {"not": {"dependentRequired": {"a": ["b"]}}},
    {"not": {"dependentSchemas": {"a": {"required": ["c"]}}}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "not": {"dependencies": {"a": ["b"], "c": {"minProperties": 3}}}},
    {"$defs": {"int": {"type": "integer"}}, "not": {"$ref": "#/$defs/int", "minimum": 3}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"s": {"type": "string"}},
     "not": {"$ref": "#/definitions/s", "minLength": 2}},
    {"oneOf": [{"contains": {"type": "string"}}, {"items": {"type": "integer"}}]},
    {"oneOf": [{"format": "date"}, {"type": "string", "maxLength": 10}]},
    {"contains": {"type": "integer"}, "maxContains": 1},
    {"contains": {"type": "integer"}, "minContains": 2, "maxContains": 2, "maxItems": 3},
    {"allOf": [{"contains": {"type": "integer"}}, {"contains": {"type": "string"}}]},
    {"allOf": [{"contains": {"type": "integer"}, "maxContains": 1}, {"contains": {"const": 1}}], "minItems": 2},
])
def test_negated_array_format_dependency_and_ref_keywords_are_exact(schema):
    check(schema, MIXED_INSTANCES)


def test_one_of_discriminated_by_a_key_the_parent_requires():
    """Branches that declare `kind` with different consts but do not require it: disjoint only
    because the parent requires `kind` (no negation needed, and the result is exact)."""
    # branch a's uniqueItems has no compiled negation: only the scoped disjointness test compiles it
    branches = [{"properties": {"kind": {"const": k}, "v": v}, "additionalProperties": False}
                for k, v in (("a", {"type": "array", "items": {"enum": [1, 2]}, "uniqueItems": True}),
                             ("b", {"type": "integer"}), ("c", {"type": "boolean"}))]
    for schema in ({"type": "object", "required": ["kind"], "oneOf": branches},
                   {"type": "object", "required": ["kind"], "allOf": [{"properties": {"x": {}}}, {"oneOf": branches}]}):
        compiled = json_schema_to_grammar(schema)
        assert not compiled.report
        check(schema, [{"kind": "a", "v": [1, 2]}, {"kind": "a", "v": [1, 1]}, {"kind": "b", "v": 1}, {"kind": "c", "v": True},
                       {"kind": "d"}, {"v": 1}, {}, {"kind": "b"}, {"kind": "a", "w": 1}, 3])


def test_the_same_definition_through_many_references_is_intersected_once():
    """Merged groups repeat a property's schemas (8 allOf members all pointing `p` at one
    definition): 2**8 alternatives unless repeats are recognized, and the budget would refuse it."""
    schema = {"$defs": {"x": {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
              "allOf": [{"properties": {"p": {"$ref": "#/$defs/x"}}} for _ in range(8)]
              + [{"patternProperties": {"": {"$ref": "#/$defs/x"}}}]}
    check(schema, [{"p": {"a": 1}}, {"p": {"b": 1}}, {"p": {}}, {"p": {"c": 1}}, {"q": {}}, {"q": {"a": 2}}, {}])


@pytest.mark.parametrize("seed", range(4))
def test_large_key_region_automata_become_one_regex(seed):
    """"Any key but these N declared ones" (N large: > 64 automaton states) used to become
    right-linear rules, one lexeme per character; it is one regex now, with one shared tail.
    Checked against plain set membership and Python's re on random keys."""
    import random

    from corral.grammars.json_schema import cpdfa

    rnd = random.Random(seed)
    words = sorted({"".join(rnd.choice("abc_x") for _ in range(rnd.randint(1, 9))) for _ in range(60)})
    negatives = [rx.literal(w) for w in words]
    extra = [rx.seq(rx.literal("x"), rx.star(rx.any_char()))] if seed % 2 else []  # a pattern region too
    d = cpdfa.combine([rx.star(rx.any_char())], negatives + extra)
    assert len(d.trans) > 64
    r = d.to_regex(max_nodes=20000)
    assert r is not None
    probes = set(words) | {w[:-1] for w in words} | {w + "a" for w in words} | {""} | {
        "".join(rnd.choice("abc_xé") for _ in range(rnd.randint(0, 11))) for _ in range(400)}
    for s in probes:
        want = s not in words and not (extra and s.startswith("x"))
        assert fullmatch(r, s) == want, s


def test_recursive_ref_into_an_anchored_document_is_reported_not_resolved_statically():
    """The 2019-09 meta-schema's vocabularies use `$recursiveRef: "#"` under `$recursiveAnchor`:
    resolving it to the vocabulary document (not the outermost anchored schema) accepted
    `{"$defs": {"foo": {"type": 1}}}`. It is dynamic scoping: reported."""
    schema = {"$schema": "https://json-schema.org/draft/2019-09/schema",
              "$ref": "https://json-schema.org/draft/2019-09/schema"}
    with pytest.raises(UnsupportedSchemaError) as e:
        json_schema_to_grammar(schema, format_assert=False)
    assert any(k == "$recursiveRef" for _, k, _ in e.value.issues)
    # anchored at the root: the root is the outermost anchor, so the reference is static
    tree = {"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveAnchor": True,
            "type": "object", "properties": {"kids": {"type": "array", "items": {"$recursiveRef": "#"}}},
            "additionalProperties": False}
    check(tree, [{}, {"kids": [{}]}, {"kids": [{"kids": []}]}, {"kids": [{"x": 1}]}, {"kids": [1]}])


def _branch(kind, **props):
    return {"type": "object", "additionalProperties": False,
            "properties": {"kind": {"const": kind}, "on": {"type": "boolean"}, **props}}


# five branches that overlap on objects without "kind" (nothing is required): oneOf needs
# S_i AND NOT S_j for four j per branch; each NOT S_j is one "some member breaks S_j" witness
# whose alternatives are the members, so the product stays one alternative per branch
MANY_OVERLAPPING_BRANCHES = {"oneOf": [
    _branch("a", url={"type": "string"}, n={"type": "integer"}),
    _branch("b", url={"type": "string"}, n={"type": "integer", "minimum": 3}),
    _branch("c", url={"type": "string", "maxLength": 2}, tags={"type": "array", "items": {"type": "string"}}),
    _branch("d", n={"type": "number"}, spec={"type": "object", "properties": {"x": {"type": "integer"}},
                                              "additionalProperties": False}),
    _branch("e", url={"type": "string"}, spec={"type": "object", "properties": {"x": {"type": "string"}}}),
]}


def test_one_of_with_many_overlapping_object_branches_is_exact():
    values = {"kind": ["a", "c", "e", "z"], "on": [True, 1], "url": ["u", "long"], "n": [1, 5, 2.5],
              "tags": [["t"], [1]], "spec": [{"x": 1}, {"x": "s"}, {"y": 1}]}
    rnd = __import__("random").Random(11)
    instances = [{}, [], "s", {"on": True}, {"url": "u"}, {"url": "long"}, {"n": 1}, {"n": 5}, {"n": 2.5},
                 {"spec": {"x": 1}}, {"spec": {"x": "s"}}, {"kind": "b", "n": 1}, {"kind": "b", "n": 4}]
    for _ in range(120):
        keys = rnd.sample(sorted(values), rnd.randint(1, 3))
        instances.append({k: rnd.choice(values[k]) for k in keys})
    check(MANY_OVERLAPPING_BRANCHES, instances)
    # negated object schemas with several members and regions, intersected with each other
    check({"allOf": [{"not": _branch("a", url={"type": "string"})},
                     {"not": {"patternProperties": {"^u": {"type": "string"}}, "properties": {"n": {"minimum": 3}}}},
                     {"type": "object"}]}, instances)


def test_rule_family_nullable_is_having_the_empty_alternative(monkeypatch):
    """The parser asks ``nullable(key)`` of every member a rule names and builds the alternatives
    only of members it predicts: each family's own check equals the contract (the empty
    alternative is among the member's alternatives), over every member reachable from the rules
    (key sets with required keys, dependencies and witnesses; a counted pattern family)."""
    from corral.grammars import ir
    from corral.grammars.json_schema import cpdfa

    monkeypatch.setattr(cpdfa, "MAX_PRODUCT_STATES", 40)
    negated = {"allOf": [{"not": _branch("a", url={"type": "string"})},
                         {"not": {"patternProperties": {"^u": {"type": "string"}}, "properties": {"n": {"minimum": 3}}}},
                         {"type": "object"}]}
    keys = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcdefg"}, "required": list("abcde"),
            "dependentRequired": {"f": ["g"]}}
    counted = {"type": "string", "pattern": "^(?:[a-c]+ ){0,3}[a-c]+$", "minLength": 3, "maxLength": 11}
    checked = {True: 0, False: 0}
    kinds = set()
    for schema in (MANY_OVERLAPPING_BRANCHES, negated, keys, counted):
        g = json_schema_to_grammar(schema, eager_key_set_alternatives=0).grammar
        todo = [s for alts in g.rules.values() for a in alts for s in a if g.family_of(s) is not None]
        seen = set()
        while todo and len(seen) < 3000:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            family, key = g.family_of(name)
            alts = family.alternatives(key)
            assert family.nullable(key) == (() in alts) == ir.RuleFamily.nullable(family, key), name
            checked[() in alts] += 1
            kinds.add(type(family).__name__)
            todo.extend(s for a in alts for s in a if g.family_of(s) is not None)
    assert checked[True] > 10 and checked[False] > 10
    assert kinds == {"KeySetFamily", "CountedStringFamily"}


def test_witness_key_sets_built_lazily_equal_the_eager_machine(llama3_vocab):
    """Past the eager budget (forced here with eager_key_set_alternatives=0), an object's key sets
    and witnesses are a KeySetFamily expanded as parsed: the same language as the listed machine
    (jsonschema as the oracle), and random token walks never reach a dead end (a member whose
    missing witnesses no unwritten key can still satisfy is never offered)."""
    import numpy as np

    import corral

    values = {"kind": ["a", "c", "e", "z"], "on": [True, 1], "url": ["u", "long"], "n": [1, 5, 2.5],
              "tags": [["t"], [1]], "spec": [{"x": 1}, {"x": "s"}, {"y": 1}]}
    rnd = __import__("random").Random(5)
    instances = [{}, {"on": True}, {"url": "u"}, {"url": "long"}, {"n": 5}, {"spec": {"x": "s"}}, {"kind": "b", "n": 4}]
    for _ in range(40):  # (the Earley oracle takes ~45 ms per text)
        keys = rnd.sample(sorted(values), rnd.randint(1, 4))
        instances.append({k: rnd.choice(values[k]) for k in keys})
    negated = {"allOf": [{"not": _branch("a", url={"type": "string"})},
                         {"not": {"patternProperties": {"^u": {"type": "string"}}, "properties": {"n": {"minimum": 3}}}},
                         {"type": "object"}]}
    for schema in (MANY_OVERLAPPING_BRANCHES, negated):
        lazy = json_schema_to_grammar(schema, eager_key_set_alternatives=0).grammar
        assert any(getattr(f, "n_witness", 0) for f in lazy.families.values())
        check(schema, instances, eager_key_set_alternatives=0)
    validator = jsonschema.Draft202012Validator(MANY_OVERLAPPING_BRANCHES)
    compiled = corral.compile_json_schema(MANY_OVERLAPPING_BRANCHES, llama3_vocab, eager_key_set_alternatives=0,
                                          whitespace="compact")
    bitmask = corral.allocate_token_bitmask(1, llama3_vocab.size)
    eos = set(llama3_vocab.eos_token_ids)
    short_token = np.array([len(llama3_vocab.token_bytes(t)) <= 2 or t in eos for t in range(llama3_vocab.size)])
    ended = 0
    for _ in range(30):
        matcher, out = compiled.matcher(), []
        for _ in range(100):
            if matcher.is_terminated():
                break
            matcher.fill_next_token_bitmask(bitmask, 0)
            allowed = np.flatnonzero(np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[:llama3_vocab.size])
            assert len(allowed), out  # no dead end
            short = allowed[short_token[allowed]]
            ends = [t for t in eos if bitmask[0, t >> 5] >> (t & 31) & 1]
            token = ends[0] if ends and rnd.random() < 0.5 else \
                int(rnd.choice(short if len(short) and rnd.random() < 0.8 else allowed))
            assert matcher.accept_token(token)
            if token not in eos:
                out.append(token)
        if matcher.is_terminated():
            ended += 1
            text = b"".join(llama3_vocab.token_bytes(t) for t in out).decode()
            assert validator.is_valid(json.loads(text)), text
    assert ended >= 5


def test_schemas_repeated_across_one_of_branches_and_their_parent_stay_exact():
    """oneOf branches repeating the same property schema (tye-schema's "bindings" in every service
    kind), a schema beside the negation of an equal one, and a parent repeating a branch's
    property (Glaiveai2K calculate_area: "side": number in both, which must not empty it)."""
    shared = {"type": "array", "items": {"type": "string"}}
    kinds = {"oneOf": [{"type": "object", "required": [k], "properties": {k: {"type": "string"},
                                                                          "tags": dict(shared, description=k)}}
                       for k in ("image", "project", "exe")]}
    values = {"image": ["i", 1], "project": ["p"], "exe": ["e"], "tags": [["a"], [1], "x"], "other": [None]}
    check(kinds, _random_objects(values, 120, 4, extra=[{}, [], {"image": "i", "project": "p"}]))
    negated = {"allOf": [{"properties": {"a": {"type": "integer", "description": "x"}}},
                         {"not": {"properties": {"a": {"type": "integer"}}}}]}
    check(negated, [{}, {"a": 1}, {"a": "s"}, 5, "s", None, [1]])
    calculate_area = {"type": "object", "required": ["shape"],
                      "properties": {"shape": {"enum": ["square", "circle"]}, "side": {"type": "number"}},
                      "oneOf": [{"properties": {"shape": {"enum": ["square"]}, "side": {"type": "number"}}},
                                {"properties": {"shape": {"enum": ["circle"]}, "radius": {"type": "number"}}}]}
    check(calculate_area, [{"shape": "square", "side": 5}, {"shape": "circle", "radius": 1}, {"shape": "square"},
                           {"shape": "circle", "side": "x"}, {"side": 5}])


@pytest.mark.parametrize("combinator", ["oneOf", "anyOf"])
def test_a_recursive_definition_combined_from_inside_itself_is_exact(combinator):
    """A property of a recursive definition that is "an enum or this definition again", under an
    if/then (JsonSchemaStore pulumi). Two bugs: (1) the opaque (recursive) alternative, inlined into
    several object alternatives, was left in the DNF as one unconstrained alternative, so the
    property took any value (anyOf: looser than asked); (2) oneOf's disjointness test inlined the
    definition from inside its own normalization, which recursed until Python's limit. The
    definition's JSON types are now read statically ("type": "object" vs a string enum)."""
    schema = {"$defs": {
        "simple": {"enum": ["string", "integer", "array"]},
        "items": {"type": "object", "required": ["type"],
                  "properties": {"type": {combinator: [{"$ref": "#/$defs/simple"}, {"$ref": "#/$defs/items"}]},
                                 "items": {"$ref": "#/$defs/items"}},
                  "if": {"properties": {"type": {"const": "array"}}}, "then": {"required": ["items"]}}},
        "$ref": "#/$defs/items"}
    assert not json_schema_to_grammar(schema).report
    check(schema, [{}, {"type": "float"}, {"type": "string"}, {"type": 1}, {"type": None}, {"type": {"type": "integer"}},
                   {"type": {"type": "float"}}, {"type": {"type": {"type": "string"}}}, {"type": "array"},
                   {"type": "array", "items": {"type": "string"}}, {"type": "array", "items": {"type": 2}},
                   {"type": {"type": "array", "items": {"type": "integer"}}}, {"type": "integer", "items": 3}, [], "s"])


def test_many_pattern_properties_split_only_into_regions_that_exist():
    """Twelve patterns, mostly disjoint: 2**12 candidate regions, of which a dozen hold keys."""
    pats = {f"^{c}[0-9]+$": {"type": "integer", "minimum": i} for i, c in enumerate("abcdefghij")}
    pats["^a"] = {"maximum": 5}  # overlaps "^a[0-9]+$"
    pats["1$"] = {"type": "integer"}  # overlaps all of them
    schema = {"type": "object", "patternProperties": pats, "additionalProperties": {"type": "string"},
              "properties": {"a1": {"type": "integer", "multipleOf": 2}}}
    rnd = __import__("random").Random(5)
    keys = ["a1", "a2", "a", "ax", "b7", "j11", "k1", "z", "c0", "h3", "x1"]
    instances = [{}, [], {"a1": 4}, {"a1": 3}, {"a2": 6}, {"a2": 4}, {"b7": 0}, {"b7": 1}, {"k1": "s"}, {"k1": 2}]
    for _ in range(150):
        instances.append({k: rnd.choice([0, 1, 2, 4, 6, 9, "s"]) for k in rnd.sample(keys, rnd.randint(1, 3))})
    check(schema, instances)


@pytest.mark.parametrize("seed", range(4))
def test_minimization_equals_the_moore_reference(seed):
    """cpdfa's minimization (Hopcroft in numba) vs plain-Python Moore rounds, state for state, on
    products and complements of random regexes (the same automata combine() builds), bounded
    repeats among them (deep chains: one Moore round per level)."""
    from corral.grammars.json_schema import cpdfa
    from corral.grammars.regex_parser import parse_regex

    rnd = __import__("random").Random(seed)
    pieces = ["a", "b", "ab", "[a-c]", "[^b]", "x*", "(ab|ba)", "[0-9]{2}", ".", "c?", "[ab]{0,9}", "(a|bc){2,7}"]
    for _ in range(25):
        regexes = [parse_regex("".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 4))) + rnd.choice(["", ".*"]))
                   for _ in range(3)]
        atoms = cpdfa.Atoms(regexes + [rx.any_char()])
        a, b, c = (cpdfa.Dfa.from_regex(r, atoms) for r in regexes)
        for d in (a.product(b, both=True, minimize=False), a.product(c.complement(), both=True, minimize=False),
                  a.product(b, both=False, minimize=False)):
            fast, ref = d.minimize(), d._minimize_reference()
            assert fast.trans == ref.trans and fast.accept == ref.accept


@pytest.mark.parametrize("seed", range(3))
def test_subset_construction_equals_the_per_atom_reference(seed):
    """cpdfa's subset construction (numba) vs the per-atom Python loop: the same subsets, numbered
    the same, on random regexes with bounded repeats, overlapping classes and unicode; and the same
    budget error when a subset count overflows."""
    import numpy as np

    from corral.grammars.json_schema import cpdfa
    from corral.grammars.regex_parser import parse_regex

    rnd = __import__("random").Random(seed)
    pieces = ["a", "[a-c]", "[^b]", "x*", "(ab|ba)", "[0-9a-f]{1,3}", ".", "c?", "[-a-z.]{0,5}", "\\.", "é|\\w",
              "[^\\s]+", "(\\d|\\.)*", "", "(a|)", "[ab]{0,0}"]
    for _ in range(30):
        r = parse_regex("".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 6))) + rnd.choice(["", ".*"]))
        atoms = cpdfa.Atoms([r, rx.any_char()])
        runs = []
        for construct in (cpdfa._subsets, cpdfa._subsets_reference):
            nfa = cpdfa._Nfa(atoms)
            s0 = nfa.new()
            end = nfa.build(r, s0)
            trans, accept = construct(nfa, s0, end)
            runs.append((np.asarray(trans).tolist(), np.asarray(accept).tolist()))
        assert runs[0] == runs[1]
    url = parse_regex("[-a-zA-Z0-9@:%._\\+~#=]{1,40}\\.[a-zA-Z0-9()]{1,6}")
    for construct in (cpdfa._subsets, cpdfa._subsets_reference):
        nfa = cpdfa._Nfa(cpdfa.Atoms([url]))
        s0 = nfa.new()
        end = nfa.build(url, s0)
        old, cpdfa.MAX_DFA_STATES = cpdfa.MAX_DFA_STATES, 50
        try:
            with pytest.raises(CompileBudgetError):
                construct(nfa, s0, end)
        finally:
            cpdfa.MAX_DFA_STATES = old


@pytest.mark.parametrize("seed", range(3))
def test_vectorized_product_equals_the_reference(seed):
    """cpdfa's level-by-level numpy product vs the pair-by-pair one: equal minimized automata
    (intersection and union, complements included), and equal state counts before minimizing."""
    from corral.grammars.json_schema import cpdfa
    from corral.grammars.regex_parser import parse_regex

    def canonical(d):  # state numbers in breadth-first order over atoms: equal iff isomorphic
        order, index = [0], {0: 0}
        for q in order:
            for t in d.trans[q]:
                if t not in index:
                    index[t] = len(order)
                    order.append(t)
        return [[index[t] for t in d.trans[q]] for q in order], [d.accept[q] for q in order]

    rnd = __import__("random").Random(seed)
    pieces = ["a", "b", "ab", "[a-c]", "[^b]", "x*", "(ab|ba)", "[0-9]{2}", ".", "c?", "\\d+"]
    for _ in range(40):
        regexes = [parse_regex("".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 5))) + rnd.choice(["", ".*"]))
                   for _ in range(2)]
        atoms = cpdfa.Atoms(regexes + [rx.any_char()])
        a, b = (cpdfa.Dfa.from_regex(r, atoms) for r in regexes)
        for other in (b, b.complement()):
            for both in (True, False):
                fast, ref = a.product(other, both), a._product_reference(other, both)
                assert canonical(fast) == canonical(ref)
                fast, ref = a.product(other, both, minimize=False), a._product_reference(other, both, minimize=False)
                assert len(fast.trans) == len(ref.trans) and sum(fast.accept) == sum(ref.accept)


def test_product_search_numbers_states_level_by_level_and_keeps_its_budget(monkeypatch):
    """The numba product numbers pairs breadth-first, level by level, new pairs of a level in
    ascending pair code (a plain-Python search written that way gives the same table), and a
    product past MAX_PRODUCT_STATES raises CompileBudgetError."""
    import numpy as np

    from corral.errors import CompileBudgetError
    from corral.grammars.json_schema import cpdfa
    from corral.grammars.regex_parser import parse_regex

    def level_reference(t1, t2):
        n2 = len(t2)
        index, order, rows, frontier = {0: 0}, [0], [], [0]
        while frontier:
            level = [[t1[c // n2][a] * n2 + t2[c % n2][a] for a in range(len(t1[0]))] for c in frontier]
            fresh = sorted({c for row in level for c in row} - set(index))
            for c in fresh:
                index[c] = len(order)
                order.append(c)
            rows.extend([[index[c] for c in row] for row in level])
            frontier = fresh
        return rows, order

    regexes = [parse_regex("(ab|b)*a{0,6}"), parse_regex("[a-c]{2,9}b?"), parse_regex(".*ba.*")]
    atoms = cpdfa.Atoms(regexes + [rx.any_char()])
    dfas = [cpdfa.Dfa.from_regex(r, atoms) for r in regexes]
    for a in dfas:
        for b in dfas + [d.complement() for d in dfas]:
            table, codes, m = cpdfa.product_levels(np.asarray(a.trans, dtype=np.int64),
                                                   np.asarray(b.trans, dtype=np.int64), 1000)
            rows, order = level_reference(a.trans, b.trans)
            assert m == len(order) and table.tolist() == rows and codes.tolist() == order
    monkeypatch.setattr(cpdfa, "MAX_PRODUCT_STATES", 5)
    with pytest.raises(CompileBudgetError):
        dfas[0].product(dfas[1], both=True)


@pytest.mark.parametrize("seed", range(3))
def test_combine_and_its_emptiness_search_equal_python_re(seed):
    """combine(positives, negatives) and combination_is_empty (the pruned product search, and the
    one-literal shortcut) against Python's re on every short string over the alphabet: a string is
    in the combination iff it fully matches every positive and no negative."""
    import itertools
    import re

    from corral.grammars.json_schema import cpdfa
    from corral.grammars.regex_parser import parse_regex

    rnd = __import__("random").Random(seed)
    pieces = ["a", "b", "ab", "[a-c]", "[^b]", "c*", "(ab|ba)", "[ab]{2}", ".", "c?", "a+"]
    words = [""] + ["".join(w) for n in range(1, 6) for w in itertools.product("abcx", repeat=n)]
    for _ in range(30):
        def pattern():
            if rnd.random() < 0.3:  # a literal: the shortcut's case
                return "".join(rnd.choice("abc") for _ in range(rnd.randint(0, 4)))
            return "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 4))) + rnd.choice(["", ".*"])
        pos = [pattern() for _ in range(rnd.randint(1, 3))]
        neg = [pattern() for _ in range(rnd.randint(0, 3))]
        if rnd.random() < 0.3:
            pos.insert(0, ".*")
        d = cpdfa.combine([parse_regex(p) for p in pos], [parse_regex(n) for n in neg])
        inside = [w for w in words if all(re.fullmatch(p, w) for p in pos) and not any(re.fullmatch(n, w) for n in neg)]
        assert [w for w in words if d.accepts(w)] == inside, (pos, neg)
        # the search itself (combination_is_empty would answer from combine's memo here)
        empty = cpdfa._search_emptiness([parse_regex(p) for p in pos], [parse_regex(n) for n in neg])
        assert empty is not None and empty == d.is_empty(), (pos, neg)
        if inside:
            assert not empty


def test_a_regex_part_is_built_once_per_atoms_and_answers_for_the_callers_atoms(monkeypatch):
    """combine's parts are memoized by (regex, atom intervals): the same multipleOf automaton under
    different negations of one schema was built again each time (Handwritten allone4: 29 times,
    ~0.2 s each). A hit over an equal but distinct Atoms is that caller's DFA, with the same rows."""
    from corral.grammars.json_schema import cpdfa
    from corral.grammars.regex_parser import parse_regex

    built = []
    real = cpdfa.Dfa.from_regex
    monkeypatch.setattr(cpdfa.Dfa, "from_regex", staticmethod(lambda node, atoms: built.append(node) or real(node, atoms)))
    regex = parse_regex("(7|14|21)*[0-6]{2,5}x")
    first_atoms, second_atoms = (cpdfa.Atoms([regex, rx.any_char()]) for _ in range(2))
    first = cpdfa._dfa_over(regex, first_atoms)
    second = cpdfa._dfa_over(regex, second_atoms)
    assert len(built) == 1 and first.atoms is first_atoms and second.atoms is second_atoms
    assert second.trans == first.trans and second.accept == first.accept
    import re
    for text in ["x", "00x", "71400x", "7140000000x", "0x", "21x"]:
        assert second.accepts(text) == bool(re.fullmatch("(7|14|21)*[0-6]{2,5}x", text))
    # combinations over those parts stay exact: the multiples of 7 below 100 minus those of 14
    schema = {"type": "integer", "multipleOf": 7, "maximum": 99,
              "anyOf": [{"not": {"multipleOf": 14}}, {"minimum": 90}]}
    check(schema, [7, 14, 21, 28, 91, 98, 105, 0, -7, 3])


def test_literal_nodes_are_shared_and_exact():
    """rx.literal is memoized (a schema negates each declared key once per key region): the shared
    node is the literal's structure, round-trips through literal_text, and matches only the text."""
    text = "x-\u00e9\U0001F600\"k"
    node = rx.literal(text)
    assert rx.literal(text) is node
    assert node == rx.seq(*(rx.Chars(((ord(c), ord(c)),)) for c in text))
    assert rx.literal_text(node) == text and rx.literal_text(rx.literal("")) == ""
    from corral.automata.dfa import regex_to_dfa

    d = regex_to_dfa(node)
    assert d.matches(text.encode("utf-8")) and not d.matches((text + "x").encode("utf-8"))


def test_one_of_over_finite_branches_keeps_the_values_exactly_one_holds():
    schema = {"type": "array", "oneOf": [{"enum": [[1], [2, 4], [5]]}, {"enum": [[1], [1, 2]]},
                                         {"enum": [[1], [2, 4], [4, 6], [5], "s"]}, {"const": [7], "maxItems": 0}],
              "if": {"minItems": 1}, "then": {"minItems": 2, "items": {"exclusiveMaximum": 5}}}
    check(schema, [[1], [2, 4], [5], [1, 2], [4, 6], [7], [], "s", [1, 2, 3], {}, [2, 4, 0]])
    # exactly-one-of-these-keys: "k absent, or its value breaks S_k" per negated branch
    keys = {f"k{i}": {"type": "object", "required": ["v"], "properties": {"v": {"type": "integer"}}} for i in range(12)}
    one_key = {"type": "object", "properties": {**keys, "not": {"type": "boolean"}}, "additionalProperties": False,
               "oneOf": [{"required": [k], "properties": {k: sub}} for k, sub in keys.items()]}
    check(one_key, [{}, {"k0": {"v": 1}}, {"k0": {"v": 1}, "k1": {"v": 2}}, {"k0": {"v": 1}, "k1": {}},
                    {"k3": {"v": "x"}}, {"k3": {"v": "x"}, "k4": {"v": 4}}, {"k11": {"v": 0}, "not": True},
                    {"k2": {"v": 1}, "k5": {"v": 1}, "k9": {"w": 1}}, {"not": False}])


LOOKAHEAD_PATTERNS = [
    r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{6,}$",  # password rules
    r"^(?!.*://)[a-z./:]+$",
    r"^(?!-)(?!.*--)[a-z0-9-]+$",
    r"^(?=a)[a-c]*(?!x)",  # the second lookahead is not leading: single-class lookahead support
    r"^(?![0-9]+$)[a-z0-9]{2,4}",
]
LOOKAHEAD_STRINGS = ["", "a", "aB3xyz", "abcdef", "ABC123", "aB3", "http://x", "a/b.c", "a:b", "-ab", "a--b", "a-b",
                     "ab", "abx", "ac", "b", "12", "1a", "abcd9", "Zz9zzzz", "a" * 7 + "Z1", "aaaa", "a1b2c"]


@pytest.mark.parametrize("pattern", LOOKAHEAD_PATTERNS)
def test_leading_lookaheads_are_automaton_intersections(pattern):
    """Python's re (which has lookaheads) is the oracle, for pattern, not pattern and
    patternProperties (key regions need one regex: combined and turned back)."""
    want = {s: re.search(pattern, s) is not None for s in LOOKAHEAD_STRINGS}
    for schema, expect in (({"type": "string", "pattern": pattern}, want),
                           ({"type": "string", "not": {"pattern": pattern}}, {s: not v for s, v in want.items()})):
        oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
        for s, ok in expect.items():
            assert oracle.accepts(json.dumps(s)) == ok, (schema, s)
    keyed = {"type": "object", "patternProperties": {pattern: {"type": "integer"}}, "additionalProperties": False}
    oracle = LarkOracle(json_schema_to_grammar(keyed).grammar)
    for s, ok in want.items():
        assert oracle.accepts(json.dumps({s: 1})) == ok, (keyed, s)


def test_large_bounded_repeats_become_rules_not_oversized_terminals(llama3_vocab, llama3_tokenizer):
    """"At most 100 words" unrolls past a terminal automaton's budget (which used to fail at the
    first mask, not at compile time): its code-point automaton is small and becomes rules."""
    import corral

    schema = {"type": "object", "properties": {"t": {"type": "string", "pattern": "^$|(^(?:\\S+\\s+){0,99}\\S+$)"},
                                               "u": {"type": "string", "pattern": "^(?:\\S+\\s+){0,29}\\S+$",
                                                     "maxLength": 300}}}
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)
    for doc in ({"t": " ".join(["w"] * 100)}, {"t": " ".join(["w"] * 101)}, {"t": ""}, {"t": "a  b\tc"},
                {"u": " ".join(["ab"] * 30)}, {"u": " ".join(["ab"] * 31)}, {"u": "x" * 300}, {"u": "x" * 301},
                {"t": " lead"}):
        assert _engine_accepts(compiled, llama3_tokenizer, json.dumps(doc)) == validator.is_valid(doc), doc


def test_property_names_without_a_small_regex_are_an_automaton(llama3_vocab, llama3_tokenizer):
    """propertyNames "^[a-z0-9_-]{1,128}$" has no regex within the state-elimination budget; its
    code-point automaton is the key language instead (it was a CompileBudgetError), alone and
    beside declared keys, patterns and a witness."""
    import corral

    names = {"pattern": "^[a-z0-9_-]{1,128}$"}
    schemas = [{"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": names},
               {"type": "object", "properties": {"Up": {"type": "integer"}, "ok": {"type": "integer"}},
                "patternProperties": {"^x": {"type": "null"}}, "propertyNames": names, "required": ["ok"]},
               {"type": "object", "propertyNames": names, "not": {"propertyNames": {"maxLength": 3}}}]
    keys = ["a", "ok", "Up", "x1", "xy", "a" * 128, "a" * 129, "b-_9", "B", "", "é", "abcd"]
    values = [1, "s", None]
    rnd = __import__("random").Random(5)
    instances = [{}] + [{k: rnd.choice(values) for k in rnd.sample(keys, rnd.randint(1, 3))} for _ in range(60)]
    for schema in schemas:
        check(schema, instances)
        compiled = corral.compile_json_schema(schema, llama3_vocab)
        validator = jsonschema.Draft202012Validator(schema)
        for doc in instances[:25]:
            assert _engine_accepts(compiled, llama3_tokenizer, json.dumps(doc)) == validator.is_valid(doc), (schema, doc)


def test_disjointness_proofs_through_recursive_references_are_bounded():
    """oneOf branches that hold the oneOf again under a key (one requires it): proving them
    disjoint looks into that key's values, which recurse; looked into to a bounded depth instead
    (without the bound this schema exhausted the recursion limit)."""
    res = {"$ref": "#/definitions/resource"}
    for third in ({"type": "object", "properties": {"ios": res, "a": {"type": "integer"}}, "required": ["a"]},
                  {"type": "object", "properties": {"ios": res}, "additionalProperties": {"type": "integer"}}):
        schema = {"definitions": {"resource": {"oneOf": [
            {"type": "string"}, {"type": "object", "properties": {"ios": res}, "required": ["ios"]}, third]}},
            "$ref": "#/definitions/resource"}
        check(schema, ["x", 1, {}, {"ios": "a"}, {"ios": 1}, {"a": 1}, {"ios": "a", "a": 1}, {"ios": {"ios": "b"}},
                       {"ios": {"a": 2}}, {"ios": {"ios": "a", "a": 1}}, {"b": 2}, {"ios": "x", "b": 3}])


@pytest.mark.parametrize("pattern", ["^ab(c|de)x*$", "^https?://", "^data:(png|svg\\+xml),[0-9a-f=]*$", "q?[0-9]*$"])
def test_long_length_bounds_on_head_then_class_patterns(pattern):
    """maxLength far above the head: the head's paths, each followed by the class in 64-character
    chunks (no product automaton with a state per length); jsonschema is the oracle around both
    bounds, and a pattern that matches everything is dropped."""
    schema = {"type": "string", "pattern": pattern, "minLength": 52, "maxLength": 70}
    heads = ["abc", "abde", "abd", "http://", "https://", "ftp://", "data:png,", "data:svg+xml,", "q", ""]
    fills = ["x", "0", "a", "=", "é"]
    instances = [h + f * n for h in heads for f in fills for n in (40, 47, 48, 49, 52, 60, 63, 64, 66, 67, 70, 75)]
    check(schema, instances + [h + "x" * 50 + "!" for h in heads])
    check({"type": "string", "pattern": "([0-9a-z]+)?", "maxLength": 60}, ["", "A" * 60, "é" * 61, "-" * 59])


@pytest.mark.parametrize("pattern,bounds", [("^[a-c]+$", (0, 140)), ("^[a-c]*$", (70, 200)), ("^[^x]+$", (1, None)),
                                            ("^[a-cé]{2,}$", (130, 131)), ("^[0-9]+$", (66, None))])
def test_long_length_bounds_on_one_class_patterns(pattern, bounds):
    """`^[a-z ]+$` with a long length bound is a chain of the class's 64-character chunks, as a
    long string is (its automaton as rules made every character a lexeme); jsonschema is the
    oracle at and around each chunk boundary and both bounds."""
    lo, hi = bounds
    schema = {"type": "string", "pattern": pattern, "minLength": lo, **({} if hi is None else {"maxLength": hi})}
    grammar = json_schema_to_grammar(schema).grammar
    assert len(grammar.rules) < 40 and not grammar.families  # chunks, not a rule per character
    lengths = sorted({0, 1, 2, 63, 64, 65, 69, 70, 71, 127, 128, 129, 130, 131, 132, 139, 140, 141, 199, 200, 201, 260})
    instances = [f * n for f in ("a", "é", "0") for n in lengths]
    instances += [f * n + "x" for f in ("a", "0") for n in (63, 64, 129, 130)] + ["x" + "a" * 70, "a" * 64 + "\n" + "a"]
    check(schema, instances)


def test_one_class_pattern_longer_than_max_length_is_empty_without_a_dead_end():
    """`^a{60,}$` with maxLength 50 has no string: the value is NEVER, not an opening quote that
    nothing can follow (a mask would allow `"` and then nothing)."""
    schema = {"type": "string", "pattern": "^a{60,}$", "maxLength": 50}
    grammar = json_schema_to_grammar(schema).grammar
    assert "QUOTE" not in str(grammar.rules)
    check({"anyOf": [schema, {"type": "integer"}]}, ["a" * 50, "a" * 60, 3, "b"])


def test_draft7_base64_content_encoding_is_asserted_and_earlier_drafts_ignore_it():
    """Oracle: Python's base64 decoder in validating mode (jsonschema does not assert content)."""
    import base64
    import binascii

    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "contentEncoding": "base64"}
    oracle = LarkOracle(json_schema_to_grammar(draft7).grammar)
    for text in ["", "eyJmb28iOiAiYmFyIn0K", "YQ==", "YWI=", "YWJj", "YQ=", "Y", "a%bc", "YW Jj", "YWJjZA==", "YWJjZA",
                 "+/+/", "YQ==YQ==", "=", "YWI=="]:
        try:
            base64.b64decode(text, validate=True)
            want = True
        except (binascii.Error, ValueError):
            want = False
        assert oracle.accepts(json.dumps(text)) == want, text
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "string", "contentEncoding": "base64"}
    oracle = LarkOracle(json_schema_to_grammar(draft4).grammar)  # not a draft-4 keyword: unknown, ignored
    assert oracle.accepts('"a%bc"') and oracle.accepts('"YQ=="')


def test_large_multiple_of_in_a_bounded_range_is_listed_exactly():
    """multipleOf values whose digit automaton would be too large (6.75 is 675/100, 2.125 is 2125/1000)
    in a bounded range: the multiples of their lcm (459/4 = 114.75) are listed. Oracle: Fraction
    arithmetic on the spelled numbers (jsonschema's float division would be the thing under test)."""
    from fractions import Fraction

    schema = {"allOf": [{"multipleOf": 6.75}, {"multipleOf": 2.125}], "exclusiveMinimum": -459, "maximum": 459,
              "not": {"anyOf": [{"multipleOf": 2}, {"const": 114.75}]}}
    oracle = LarkOracle(json_schema_to_grammar(schema).grammar)
    texts = [str(Decimal(k) / 8) for k in range(-3800, 3800)] + ["114.750", "-344.25", "344.250", "229.5", "459", "-459"]
    accepted = set()
    for text in texts:
        v = Fraction(text)
        want = (-459 < v <= 459 and (v / Fraction("6.75")).denominator == 1 and (v / Fraction("2.125")).denominator == 1
                and (v / 2).denominator != 1 and v != Fraction("114.75"))
        assert oracle.accepts(text) == want, text
        if want:
            accepted.add(v)
    # t * 114.75 for t in -3..4, less 0 (even) and 114.75 (excluded)
    assert sorted(accepted) == [Fraction(x) for x in ("-344.25", "-229.5", "-114.75", "229.5", "344.25", "459")]


def test_string_algebra_of_nested_negations_and_one_of():
    """Pure string schemas under not/anyOf/allOf/oneOf (and types other than string, which pass
    through untouched or are negated) compile to one automaton instead of a DNF that would grow as
    9^3 here; every instance agrees with jsonschema."""
    import random

    inner = [{"not": {"anyOf": [{"pattern": "^..$"}, {"pattern": "ab"}, {"pattern": "b1"}]}},
             {"not": {"anyOf": [{"pattern": "^..$"}, {"pattern": "bc"}, {"pattern": "c1"}]}},
             {"not": {"anyOf": [{"pattern": "^..$"}, {"pattern": "ca"}, {"pattern": "a1"}]}}]
    schema = {"allOf": [{"not": {"anyOf": inner}}, {"pattern": "[aA][12]"}, {"maxLength": 12}],
              "$defs": {"odd": {"oneOf": [{"pattern": "z"}, {"minLength": 7}, {"type": ["null", "number"]}]}},
              "anyOf": [{"$ref": "#/$defs/odd"}, {"type": "boolean"}, {"not": {"type": "string"}}]}
    rnd = random.Random(5)
    pieces = ["ab", "b1", "bc", "c1", "ca", "a1", "z", "A2", "x"]
    strings = ["".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 6))) for _ in range(400)]
    strings += ["ab1bc1ca1", "zab1bc1ca", "a1", "ab", "abca1", "zca1"]
    validator = jsonschema.Draft202012Validator(schema)
    assert 10 < sum(validator.is_valid(x) for x in strings) < 390  # both outcomes represented
    check(schema, strings + [None, True, 3, [], {}])


def test_finite_candidates_decided_by_validation_and_scientific_literals():
    """An enum beside combinators lists the candidates: each is validated against the whole schema,
    so a negation the compiler could not build (multipleOf 0.123456789) costs nothing. Number
    literals accept the scientific spelling serializers write (json.dumps(1e308) == "1e+308")."""
    check({"allOf": [{"enum": [1e308, 3, "a", 2.5e-7]}, {"not": {"multipleOf": 0.123456789, "type": "integer"}}]},
          [1e308, 3, "a", 4, 2.5e-7, 2.5e-8])
    check({"enum": [1, 2, 3, "x", 1e20], "not": {"enum": [2]}, "anyOf": [{"type": "integer"}, {"const": "x"}]},
          [1, 2, 3, "x", 4, "y", 1e20, 1.0])
    oracle = LarkOracle(json_schema_to_grammar({"const": 1.5e-7}).grammar)
    for text, want in (("1.5e-07", True), ("1.5E-7", True), ("0.00000015", True), ("15e-8", False), ("1.5e-6", False)):
        assert oracle.accepts(text) == want, text  # 15e-8 is the same value: a spelling not accepted


def test_long_length_bound_on_a_pattern_through_the_counted_family(monkeypatch, llama3_vocab, llama3_tokenizer):
    """A pattern whose product with a length bound exceeds the automaton budget (a word count with
    maxLength 500 in real schemas) becomes a lazily expanded (state, length) family. The budget is
    lowered here so a small case takes that path: its expansion agrees with jsonschema, and random
    walks over the real Llama-3 vocabulary never reach an empty mask and end in valid documents."""
    import random

    import jsonschema
    import numpy as np

    import corral
    from corral.grammars.json_schema import cpdfa

    monkeypatch.setattr(cpdfa, "MAX_PRODUCT_STATES", 40)
    schema = {"type": "string", "pattern": "^(?:[a-c]+ ){0,3}[a-c]+$", "minLength": 3, "maxLength": 11}
    res = json_schema_to_grammar(schema)
    assert res.grammar.families  # the counted path is the one under test
    oracle = LarkOracle(res.grammar.expanded())
    validator = jsonschema.Draft202012Validator(schema)
    rnd = random.Random(7)
    for _ in range(400):
        text = "".join(rnd.choice("abc ") for _ in range(rnd.randrange(0, 14)))
        assert oracle.accepts(json.dumps(text)) == validator.is_valid(text), text
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    bitmask = corral.allocate_token_bitmask(1, llama3_vocab.size)
    eos = set(llama3_vocab.eos_token_ids)
    for _ in range(25):
        matcher, out = compiled.matcher(), []
        while not matcher.is_terminated():
            matcher.fill_next_token_bitmask(bitmask, 0)
            allowed = np.flatnonzero(np.unpackbits(bitmask.numpy().view(np.uint8), bitorder="little")[:llama3_vocab.size])
            assert len(allowed), out  # no dead end
            token = int(rnd.choice(allowed))
            assert matcher.accept_token(token)
            if token not in eos:
                out.append(token)
        text = b"".join(llama3_vocab.token_bytes(t) for t in out).decode()
        assert validator.is_valid(json.loads(text)), text


def test_one_of_discriminated_by_disjoint_patterns():
    """oneOf branches told apart by a required key whose values match disjoint patterns are proved
    disjoint by automaton intersection (17 such branches in a real form schema: without the proof,
    S_i AND NOT S_j for every pair overflows the alternative budget)."""
    kinds = {"string": {"type": "string"}, "integer": {"type": "integer"}, "decimal": {"type": "number"},
             "flag": {"type": "boolean"}, "list": {"type": "array", "items": {"type": "string"}}}
    branches = [{"type": "object", "required": ["type", "value"], "additionalProperties": False,
                 "properties": {"type": {"type": "string", "pattern": f"^basic:{k}:$"}, "value": v}}
                for k, v in kinds.items()]
    branches.append({"type": "object", "required": ["type"], "properties": {"type": {"pattern": "^data(:[a-z]+)?:$"}}})
    schema = {"type": "array", "items": {"oneOf": branches}}
    res = json_schema_to_grammar(schema)
    assert not res.report  # nothing approximated
    # one alternative per branch (63 rules); the pairwise negations would build ~5,000
    assert len(res.grammar.rules) < 200
    insts = [[{"type": "basic:string:", "value": "x"}], [{"type": "basic:integer:", "value": 2}],
             [{"type": "basic:integer:", "value": 2.5}], [{"type": "basic:decimal:", "value": 2.5}],
             [{"type": "basic:flag:", "value": True}, {"type": "data:x:", "extra": 1}], [{"type": "data:"}],
             [{"type": "basic:list:", "value": ["a"]}], [{"type": "basic:list:", "value": [1]}],
             [{"type": "basic:other:", "value": 1}], [{"type": "data:X:"}], [{"type": "basic:string:"}]]
    check(schema, insts)


def test_large_string_automata_are_one_spelled_terminal(llama3_vocab, llama3_tokenizer):
    """A string value whose automaton is large ("exactly one of five unanchored words", from a
    Github_easy schema) is one terminal spelled straight from the automaton: right-linear rules
    made each character a lexeme and a token of the string one parser state per character
    (160k states and ~0.9 s per mask). Exact against jsonschema, and states stay few."""
    import corral

    words = ["customer", "maker", "operator", "admin", "designer"]
    schema = {"type": "array", "items": {"type": "string", "oneOf": [{"pattern": w} for w in words]}}
    grammar = json_schema_to_grammar(schema).grammar
    assert any(isinstance(r, rx.Automaton) for r in grammar.terminals.values())
    docs = [["customer"], ["maker", "xoperatorx"], ["admin maker"], ["designer", "\u00e9admin\u00e9"], ["nothing"],
            ["custome"], ["makeroperator"], ["a\\"], ["operat\u00f6r"], ["opera\\u0074or"], []]
    check(schema, docs)
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)
    for doc in docs:
        assert _engine_accepts(compiled, llama3_tokenizer, json.dumps(doc)) == validator.is_valid(doc), doc
    assert len(compiled.states.states) < 2000


def test_string_automata_too_large_to_spell_stay_rules(llama3_vocab, llama3_tokenizer):
    """A code-point automaton of 2**11 states ("an a eleven from the end") would spell into a byte
    DFA past the terminal budget, which failed at the first mask: such strings stay rules."""
    import corral

    schema = {"type": "string", "pattern": "^[ab]*a[ab]{10}$"}
    grammar = json_schema_to_grammar(schema).grammar
    assert not any(isinstance(r, rx.Automaton) for r in grammar.terminals.values())
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)
    for doc in ["a" + "b" * 10, "ba" + "b" * 10, "b" * 11, "abab" * 4, "a" * 10, "c" + "a" * 11]:
        assert _engine_accepts(compiled, llama3_tokenizer, json.dumps(doc)) == validator.is_valid(doc), doc


# ------------------------------------------------------------------ many-branch discriminated objects

def _random_objects(values: dict, n: int, seed: int, extra=()):
    rnd = __import__("random").Random(seed)
    out = list(extra)
    for _ in range(n):
        keys = rnd.sample(sorted(values), rnd.randint(0, min(4, len(values))))
        out.append({k: rnd.choice(values[k]) for k in keys})
    return out


def test_if_then_chain_over_one_discriminator_is_exact():
    """Ten if/then pairs on one "kind" value (a CI-config pattern). Each false "if" is "kind is
    present with another value": a required key plus a value constraint, not a "some member"
    witness, so ten of them do not multiply into 2**10 member variants."""
    kinds = [f"k{i}" for i in range(10)]
    schema = {"type": "object", "required": ["kind"],
              "properties": {"kind": {"enum": kinds}, "n": {"type": "integer"}, "s": {"type": "string"}},
              "allOf": [{"if": {"properties": {"kind": {"const": k}}},
                         "then": {"required": ["n"] if i % 2 else ["s"],
                                  "properties": {"n": {"minimum": i}}}} for i, k in enumerate(kinds)]}
    res = json_schema_to_grammar(schema)
    assert not res.report
    values = {"kind": kinds + ["zz", 3], "n": [0, 5, 9, -1, 2.5], "s": ["x", 1], "t": [None]}
    check(schema, _random_objects(values, 200, 5, extra=[{}, [], {"kind": "k1", "n": 1}, {"kind": "k0", "s": "x"}]))


def test_one_of_with_many_branches_on_an_optional_discriminator_is_exact():
    """Twelve generator kinds, "generator" optional: every branch holds on {} and on objects without
    the key. Within a branch that has "generator", the negations of the others are implied; without
    it, they are witnesses on the parameters only. Splitting on the key's presence keeps each
    object's witness count small."""
    def branch(i):
        params = {"type": "object", "properties": {f"p{i}": {"type": "integer"}, "q": {"type": "string"}}}
        if i % 3 == 0:
            params["required"] = [f"p{i}"]
        return {"properties": {"generator": {"enum": [f"g{i}"]}, "parameters": params}}
    schema = {"type": "object", "properties": {"symbols": {"type": "object", "additionalProperties": {
        "oneOf": [branch(i) for i in range(12)]}}}}
    res = json_schema_to_grammar(schema)
    assert not res.report
    values = {"generator": ["g0", "g1", "g5", "g12", 3], "parameters": [{}, {"p0": 1}, {"p3": "x"}, {"q": 1}, 7],
              "other": [1]}
    check(schema, [{"symbols": {"s": o}} for o in _random_objects(values, 200, 4)])


def test_one_of_with_many_branches_on_a_required_discriminator_is_exact():
    """Eight branches told apart by an enum of "action" values, each with its own arguments. A
    branch's negations of the others ("action is not k_j, or args break S_j") are implied by its
    own discriminator value and dropped, instead of counting as eight witnesses."""
    def branch(i):
        return {"type": "object", "required": ["action"], "additionalProperties": False,
                "properties": {"action": {"enum": [f"a{i}", f"alias{i}"]}, "on": {"type": "boolean"},
                               "args": {"type": "object", "properties": {f"p{i}": {"type": "integer"}},
                                        "required": [f"p{i}"] if i % 3 else []}}}
    schema = {"type": "array", "items": {"oneOf": [branch(i) for i in range(8)]}}
    res = json_schema_to_grammar(schema)
    assert not res.report
    values = {"action": ["a0", "a1", "alias4", "a7", "a9", 1], "on": [True, "y"],
              "args": [{}, {"p1": 1}, {"p0": 1}, {"p4": "x"}, {"p7": 2, "q": 1}, 5]}
    check(schema, [[o] for o in _random_objects(values, 200, 6)])


def test_one_of_over_single_key_objects_splits_on_key_presence():
    """Eleven closed single-key objects with nothing required overlap on {}: each branch negates
    ten others, "some member is not k_j or breaks its value". Past the witness limit the object is
    split on the presence of its declared key; present, the other branches' negations hold."""
    def branch(i):
        return {"type": "object", "additionalProperties": False,
                "properties": {f"k{i}": {"type": "integer", "minimum": i} if i % 2 else {"type": "string"}}}
    schema = {"oneOf": [{"enum": ["k0", "k1"]}] + [branch(i) for i in range(11)]}
    res = json_schema_to_grammar(schema)
    assert not res.report
    values = {f"k{i}": [0, 3, 6, "s", None] for i in range(11)}
    check(schema, _random_objects(values, 250, 7, extra=[{}, {"x": 1}, [], 1]))


BASE = {"type": "object", "required": ["id"],
        "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"}, "tags": {"type": "array"},
                       "meta": {"type": "object", "properties": {"v": {"type": "integer"}}}},
        "patternProperties": {"^x-": {"type": "string"}}}


def test_one_of_lifts_a_conjunct_every_branch_shares():
    """oneOf(A and B1, ..., A and Bn) is A and oneOf(B1, ..., Bn): the shared base is not negated
    once per other branch (each negation multiplies the alternatives by all of A's ways to fail)."""
    schema = {"$defs": {"base": BASE},
              "oneOf": [{"allOf": [{"$ref": "#/$defs/base"},
                                   {"properties": {"type": {"const": f"t{i}"}, f"f{i}": {"type": "number"}},
                                    "required": ["type"]}],
                         "description": f"branch {i}"} for i in range(9)]}
    res = json_schema_to_grammar(schema)
    assert not res.report
    values = {"id": ["abc", "A", 3], "type": ["t0", "t3", "t8", "t9"], "f3": [1, "x"], "f0": [2.5],
              "x-a": ["s", 1], "meta": [{"v": 1}, {"v": "s"}], "tags": [[], {}]}
    check(schema, _random_objects(values, 250, 8, extra=[{}, 1, {"id": "a"}, {"type": "t1"}]))


@pytest.mark.parametrize("branches", [
    # shared rest dicts and shared allOf members, plus a branch that is only the shared part
    [{"type": "object", "allOf": [{"required": ["a"]}]}, {"type": "object", "allOf": [{"required": ["b"]}]},
     {"type": "object"}],
    [{"allOf": [{"minProperties": 1}, {"required": ["a"]}]}, {"allOf": [{"minProperties": 1}, {"maxProperties": 1}]}],
    # two branches equal: nothing satisfies exactly one of them
    [{"allOf": [{"properties": {"a": {"type": "integer"}}}]}, {"allOf": [{"properties": {"a": {"type": "integer"}}}]}],
    # a shared conjunct holding the disjointness
    [{"type": "integer", "allOf": [{"minimum": 3}]}, {"type": "integer", "allOf": [{"maximum": 5}]}],
])
def test_common_conjunct_lifting_is_exact(branches):
    schema = {"oneOf": branches}
    values = {"a": [1, "s"], "b": [None], "c": [2]}
    check(schema, _random_objects(values, 60, 9, extra=[{}, 0, 3, 4, 6, "s", [], None]))


def test_one_of_with_unevaluated_properties_is_not_lifted():
    """unevaluatedProperties sees what its allOf evaluates: lifting the shared allOf member out of
    the branch would change what it rejects."""
    shared = {"properties": {"a": {"type": "integer"}}}
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "oneOf": [{"allOf": [shared], "properties": {"b": {"type": "string"}}, "unevaluatedProperties": False},
                        {"allOf": [shared], "required": ["c"]}]}
    try:
        res = json_schema_to_grammar(schema)
    except UnsupportedSchemaError:
        return  # refused is fine; compiling it looser or stricter is not
    check(schema, [{}, {"a": 1}, {"a": 1, "b": "s"}, {"c": 1}, {"a": 1, "c": 1}, {"d": 1}, {"a": "x", "c": 1}])
    del res


UNEVALUATED_SCHEMAS = [
    # allOf of $refs (the meltano/discovery shape): every key the members declare is evaluated
    {"$defs": {"base": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               "more": {"properties": {"b": {"type": "string"}}, "patternProperties": {"^x-": {"type": "null"}}}},
     "allOf": [{"$ref": "#/$defs/base"}, {"$ref": "#/$defs/more"}], "unevaluatedProperties": False},
    # a value schema for the rest, own properties beside $ref
    {"$defs": {"base": {"properties": {"a": {"type": "integer"}}}}, "$ref": "#/$defs/base",
     "properties": {"c": {"type": "integer"}}, "unevaluatedProperties": {"type": "string"}},
    # a member with additionalProperties evaluates every key: the keyword is moot
    {"allOf": [{"properties": {"a": {"type": "integer"}}, "additionalProperties": True}], "unevaluatedProperties": False},
    # a nested unevaluatedProperties too
    {"allOf": [{"properties": {"a": {"type": "integer"}}, "unevaluatedProperties": {"type": "null"}}],
     "unevaluatedProperties": False},
    # oneOf/if branches that evaluate only keys the always-applied part does, and a not that evaluates none
    {"allOf": [{"properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}],
     "oneOf": [{"required": ["a"]}, {"required": ["b"], "properties": {"b": {"minLength": 2}}}],
     "if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]},
     "not": {"properties": {"c": {"type": "null"}}, "required": ["c"]}, "unevaluatedProperties": False},
]


@pytest.mark.parametrize("schema", UNEVALUATED_SCHEMAS, ids=range(len(UNEVALUATED_SCHEMAS)))
def test_unevaluated_properties_over_statically_known_applicators(schema):
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    values = {"a": [1, "s"], "b": ["s", "long", 2], "c": [None, 3, "t"], "x-1": [None, 0], "d": ["s", None]}
    extra = [{}, 0, "s", [], {"a": 1}, {"a": 2}, {"a": 1, "b": "s"}, {"a": 1, "x-1": None}, {"a": 1, "x-9": None, "b": "long"},
             {"b": "long"}, {"a": 1, "b": "ss"}, {"a": 2, "d": "s"}, {"a": 2, "c": None}]
    check(schema, _random_objects(values, 80, 4, extra=extra))


@pytest.mark.parametrize("branch", [
    {"anyOf": [{"properties": {"z": {"type": "integer"}}}, {"required": ["a"]}]},  # evaluates z when it holds
    {"if": {"properties": {"z": {"const": 1}}}, "then": {}},
    {"dependentSchemas": {"a": {"properties": {"z": True}}}},
])
def test_unevaluated_properties_over_instance_dependent_applicators_is_reported(branch):
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "properties": {"a": {"type": "integer"}}, **branch, "unevaluatedProperties": False}
    with pytest.raises(UnsupportedSchemaError) as e:
        json_schema_to_grammar(schema)
    assert "unevaluatedProperties" in str(e.value)


def test_enum_is_disjoint_from_a_pattern_and_its_negation():
    """An enum against "a string matching P and not in the enum": disjoint by automaton, so the
    oneOf needs no negation of either branch."""
    schema = {"type": "array", "items": {"oneOf": [
        {"enum": ["red", "green", "blue", 1]},
        {"type": "string", "pattern": "^[a-z]+$", "not": {"enum": ["red", "green", "blue"]}},
        {"type": "string", "pattern": "^#[0-9a-f]{6}$"}]}}
    res = json_schema_to_grammar(schema)
    assert not res.report
    check(schema, [[x] for x in ["red", "blue", 1, 2, "mauve", "Red", "#00ff00", "#00FF00", "", None]])


# ------------------------------------------------------------------ lookaheads anywhere in a pattern

LOOKAHEAD_ANYWHERE = [
    # (pattern, alphabet): every string over the alphabet up to length 7 is checked against re.search
    (r"^@([a-c](?:(?!.*--)[a-c-]*[a-c])?)/([a-c](?:(?!.*--)[a-c-]*[a-c])?)$", "ab-/@"),  # npm-style scope
    (r"((?:[^/]*/)*)(?=\.(ya?ml|json))", "a/.ymlj"),  # a path followed by an extension
    (r"^(https?://|/?.?-?(?!\w+://)\w).+\.ya?ml$", "ah:/-.yml"),  # lookahead inside an alternation
    (r"^(?:a(?=bc)|ab)c$", "abc"),
    (r"^(a(?!b)){2}$", "ab"),
    (r"a(?=b|$)", "abc"),
    (r"^x(?!y$)..$", "xyz"),
    (r"(?=ab)a(?!bc)", "abc"),
    (r"^(?:(?!aa)[ab]){0,4}$", "ab"),
    # lookaheads then one character, repeated without bound (the "does not contain" idiom)
    (r"^((?!ab).)*$", "abc"),
    (r"^((?!mode)(?!Mode).)*$", "modeM"),
    (r"^(?:(?!ab).)+x$", "abx"),
    (r"((?=[a-z])\w){2,}", "aB1"),
    (r"x((?=.*c)[ab])*y", "abcxy"),
    (r"^((?!.*cc).)*a$", "ac"),
]


def _all_strings(alphabet: str, n: int):
    for k in range(n + 1):
        for t in itertools.product(alphabet, repeat=k):
            yield "".join(t)


@pytest.mark.parametrize("pattern,alphabet", LOOKAHEAD_ANYWHERE)
def test_lookaheads_anywhere_equal_re_search_exhaustively(pattern, alphabet):
    """A lookahead sees the rest of the whole string (not just its group): the pattern is read right
    to left as a function of its continuation, with automaton intersections at each lookahead.
    Exact against Python's re.search on every string up to length 7 over a small alphabet."""
    from corral.grammars.json_schema.lookahead import search_language

    d = search_language(pattern)
    atom_of = {c: next(i for i, (lo, hi) in enumerate(d.atoms.intervals) if lo <= ord(c) <= hi) for c in alphabet}
    compiled = re.compile(pattern)
    for s in _all_strings(alphabet, 7 if len(alphabet) <= 4 else 5):
        q = 0
        for c in s:
            q = d.trans[q][atom_of[c]]
        assert d.accept[q] == (compiled.search(s) is not None), (pattern, s)


def test_lookahead_patterns_in_schemas_are_exact():
    schema = {"type": "array", "items": {"type": "string", "pattern": LOOKAHEAD_ANYWHERE[0][0]}}
    assert not json_schema_to_grammar(schema).report
    check(schema, [["@a/b"], ["@ab-c/a"], ["@a-b/c-a"], ["@a--b/c"], ["@a/b--c"], ["@a/b", "@a-/b"], ["@-a/b"],
                   ["a/b"], ["@a/b/c"]])
    keys = {"type": "object", "patternProperties": {r"^(?:a(?=bc)|ab)c$": {"type": "integer"}},
            "additionalProperties": False}
    check(keys, [{"abc": 1}, {"abc": "x"}, {"ac": 1}, {"abcc": 1}, {}])


@pytest.mark.parametrize("pattern,construct", [
    (r"^((?!ab)[a-c]{2})*$", "lookahead"),  # an unbounded repetition of more than guards + a character
    (r"(?<=ab)c", "lookbehind"),
    (r"(?<!ab)c", "lookbehind"),
    (r"a\b(?=b.)", "lookahead"),  # a word boundary looks at the previous character
])
def test_lookaheads_the_automaton_reading_cannot_decide_are_reported(pattern, construct):
    with pytest.raises(UnsupportedSchemaError) as e:
        json_schema_to_grammar({"type": "string", "pattern": pattern})
    assert any(k == "pattern" for _, k, _ in e.value.issues)
    from corral.grammars.json_schema.lookahead import search_language
    from corral.errors import GrammarError
    with pytest.raises(GrammarError) as g:
        search_language(pattern)
    assert g.value.construct == construct


def test_one_of_split_on_a_value_the_negated_branches_share():
    """Address schemas: country branches with their own state lists and a 10-character postal code,
    then "any other country" with a 51-character one. Without "country", that last branch's
    negations of the others are "state outside S_j, or a postal code over 10 characters": nine
    two-way witnesses. Splitting on the postal code's value (over 10 characters: all hold; not:
    each is a state constraint) keeps every object under the witness limit."""
    states = {"BRA": ["AC", "AL", "SP"], "ITA": ["AL", "MI", "TO"], "USA": ["AL", "CA", "NY"], "CAN": ["ON", "QC"],
              "MEX": ["AG", "BC"], "IND": ["AP", "BR"], "CHN": ["11", "34"], "AUS": ["NSW", "QLD"], "DEU": ["BY", "BE"]}
    branches = [{"properties": {"country": {"enum": [c]}, "state": {"type": "string", "enum": v},
                                "postalCode": {"type": "string", "maxLength": 10}}} for c, v in states.items()]
    branches.append({"properties": {"country": {"enum": ["FRA", "ESP", "JPN"]},
                                    "postalCode": {"type": "string", "maxLength": 51}}})
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "oneOf": branches}
    res = json_schema_to_grammar(schema)
    assert not res.report
    values = {"country": ["BRA", "USA", "CAN", "FRA", "XXX"], "state": ["AL", "NY", "ON", "34", "ZZ"],
              "postalCode": ["12345", "123456789012", "x" * 52], "city": ["Rome"]}
    check(schema, _random_objects(values, 300, 12, extra=[{}, {"state": "AL"}, {"postalCode": "12345678901"}]))


def test_dependencies_on_top_of_many_required_keys_use_the_lazy_key_sets():
    """More required and dependent keys than eager key sets track (budgets lowered here so the
    oracle can list the family): the rule family checks required keys and dependencies where the
    member list ends; a key depending on an undeclared key under additionalProperties false is
    never written."""
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "properties": {k: {"type": "integer"} for k in "abcdefg"}, "required": ["a", "b"],
              "dependencies": {"c": ["d", "e"], "f": ["zz"], "g": {"required": ["a"]}}}
    res = json_schema_to_grammar(schema, max_tracked_keys=2, max_tracked_required=2)
    assert res.grammar.families
    values = {k: [1, "x"] for k in "abcdefg"}
    check(schema, _random_objects(values, 200, 13, extra=[{"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5},
                                                          {"a": 1, "b": 2, "c": 3, "d": 4}, {"a": 1, "b": 2, "f": 1},
                                                          {"a": 1, "b": 2, "g": 1}]),
          max_tracked_keys=2, max_tracked_required=2)



def test_one_of_over_closed_maps_with_disjoint_key_languages_needs_no_negation():
    """Two closed maps whose key patterns share no key, each with at least one member, are
    disjoint: the oneOf is their union (no "exactly one" negations), exact against jsonschema."""
    color = {"type": "string"}
    schema = {"type": "array", "items": {"oneOf": [
        {"type": "object", "patternProperties": {r"^[0-9]\.?[0-9]*x$": color}, "additionalProperties": False,
         "minProperties": 1},
        {"type": "object", "patternProperties": {r"^[a-z]{2,3}(-[A-Z]{2})?$": color}, "additionalProperties": False,
         "minProperties": 1},
        {"type": "object", "properties": {"ref": {"type": "string"}}, "required": ["ref"], "additionalProperties": False}]}}
    res = json_schema_to_grammar(schema)
    assert not res.report
    check(schema, [[{"2x": "a"}], [{"en": "a"}], [{"en-GB": "b", "fr": "c"}], [{"2x": "a", "en": "b"}], [{}],
                   [{"ref": "r"}], [{"ref": 1}], [{"1.5x": "a"}], [{"EN": "a"}]])


SUITE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "json-schema-test-suite", "tests")


@pytest.mark.parametrize("draft,uri", [("draft4", "http://json-schema.org/draft-04/schema#"),
                                       ("draft6", "http://json-schema.org/draft-06/schema#")])
def test_hostname_of_drafts_4_and_6_is_exact_and_later_drafts_report_it(llama3_tokenizer, llama3_vocab, draft, uri):
    """Drafts 4 and 6 define `hostname` by RFC 1034 alone: every case of the Test Suite's hostname
    file, the 253-character bound (with and below a maxLength), in every JSON serialization the
    suite protocol uses. Draft 7 on admits Punycode A-labels judged by IDNA: reported, not guessed."""
    import corral

    def accepted(compiled, value) -> bool:
        m = compiled.matcher()
        for tok in llama3_tokenizer.encode(json.dumps(value), add_special_tokens=False):
            bits = m.next_token_bits()
            if not (int(bits[tok >> 5]) >> (tok & 31)) & 1 or not m.accept_token(tok):
                return False
        return m.is_accepting()

    with open(os.path.join(SUITE, draft, "optional", "format", "hostname.json"), encoding="utf-8") as f:
        groups = json.load(f)
    for group in groups:
        compiled = corral.compile_json_schema({**group["schema"], "$schema": uri}, llama3_vocab)
        for case in group["tests"]:
            assert accepted(compiled, case["data"]) == case["valid"], case["description"]
    compiled = corral.compile_json_schema({"$schema": uri, "type": "string", "format": "hostname"}, llama3_vocab)
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(longest) == 253 and accepted(compiled, longest) and not accepted(compiled, longest + "c")
    assert not accepted(compiled, "a" * 64) and accepted(compiled, "a" * 63) and accepted(compiled, "1-2.x0")
    bounded = corral.compile_json_schema({"$schema": uri, "format": "hostname", "maxLength": 5}, llama3_vocab)
    assert accepted(bounded, "ab.cd") and not accepted(bounded, "ab.cde") and accepted(bounded, 7)
    for later in ("http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema"):
        with pytest.raises(UnsupportedSchemaError, match="hostname"):
            corral.compile_json_schema({"$schema": later, "format": "hostname"}, llama3_vocab)


def test_oneof_of_hostname_and_ip_formats_in_draft4_is_exact():
    """Draft 4's hostname (RFC 1034, compiled) negates like any compiled format, so a oneOf over
    hostname / ipv4 / ipv6 is exact: "1.2.3.4" is a hostname too (RFC 1123 lets labels start with
    a digit), so it matches two branches and is invalid (Github_medium o51161's `server`)."""
    import ipaddress

    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

    def is_hostname(s):
        return len(s) <= 253 and re.fullmatch(rf"{label}(?:\.{label})*", s) is not None

    def is_ip(s, kind):
        try:
            return isinstance(ipaddress.ip_address(s), kind) and (kind is not ipaddress.IPv4Address or
                                                                   all(p == str(int(p)) for p in s.split(".")))
        except ValueError:
            return False

    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "string",
              "oneOf": [{"format": "hostname"}, {"format": "ipv4"}, {"format": "ipv6"}]}
    oracle = LarkOracle(json_schema_to_grammar(schema).grammar.expanded())
    for s in ["example.com", "1.2.3.4", "::1", "a..b", "256.1.1.1", "1.2.3", "x" * 254, "x" * 63, "x" * 64,
              "-a.com", "fe80::1", "1::", "a-.b", "0.0.0.0", "::ffff:1.2.3.4", "", "a b"]:
        want = [is_hostname(s), is_ip(s, ipaddress.IPv4Address), is_ip(s, ipaddress.IPv6Address)].count(True) == 1
        assert oracle.accepts(json.dumps(s)) == want, s


def _tagged(kinds, **props):
    tag = {"const": kinds} if isinstance(kinds, str) else {"type": "string", "enum": kinds}
    return {"type": "object", "required": ["kind"], "properties": {"kind": tag, **props}}


# a union told apart by a required tag whose values no two branches share: its negation is
# "not an object, or no tag, or a tag no branch has, or branch i's tag and not branch i"
TAGGED_BRANCHES = [
    _tagged("a", x={"type": "integer"}),
    _tagged(["b", "bb"], y={"type": "string", "maxLength": 2}, additionalProperties=False),
    {**_tagged("c", z={"type": "boolean"}), "required": ["kind", "z"]},
    _tagged(["d"], w={"type": "array", "items": {"type": "integer"}}),
]


def _tagged_instances():
    values = {"kind": ["a", "b", "bb", "c", "d", "e", 1], "x": [1, "s"], "y": ["ab", "abc", 3], "z": [True, None],
              "w": [[1, 2], [1, "s"]]}
    rnd = __import__("random").Random(5)
    out = [1, "a", None, [], {}, {"x": 1}, {"kind": "a"}, {"kind": "c"}, {"kind": "c", "z": True}, {"kind": "e"}]
    for _ in range(150):
        keys = rnd.sample(sorted(values), rnd.randint(1, 3))
        out.append({k: rnd.choice(values[k]) for k in keys})
    return out


@pytest.mark.parametrize("combinator", ["oneOf", "anyOf"])
def test_negated_tagged_union_is_exact(combinator):
    instances = _tagged_instances()
    check({"not": {combinator: TAGGED_BRANCHES}}, instances)
    # tags that are not finite (patterns told apart by their first letter): "a tag in no branch"
    # is then the conjunction of the negated tag schemas
    by_pattern = [{**b, "properties": {**b["properties"], "kind": {"type": "string", "pattern": f"^{c}"}}}
                  for b, c in zip(TAGGED_BRANCHES, "abcd")]
    check({"not": {combinator: by_pattern}}, instances + [{"kind": "ax", "x": 1}, {"kind": "bx"}, {"kind": "cz", "z": 1}])
    # the array form: some element is none of the branches (items under a negation)
    check({"type": "array", "not": {"items": {combinator: TAGGED_BRANCHES}}},
          [[x] for x in instances[:60]] + [instances[i:i + 2] for i in range(0, 60, 3)])


def test_one_of_of_references_sharing_a_base_definition_is_exact():
    # oneOf over bare $refs whose targets are allOf [base, own]: the base is lifted out through the
    # references, and each own part's "type" pattern picks one of the base's enum values (the
    # JSON Schema Store state machine schema, past the combinator budget before)
    defs = {"base": {"type": "object", "required": ["id", "type"],
                     "properties": {"id": {"type": "string"}, "type": {"enum": ["atomic", "compound", "final"]}}}}
    for kind, extra in (("atomic", {"on": {"type": "object"}}), ("compound", {"states": {"type": "object"}}),
                        ("final", {"data": {"type": "integer"}})):
        defs[kind] = {"allOf": [{"$ref": "#/definitions/base"},
                                {"type": "object", "properties": {"type": {"type": "string", "pattern": kind}, **extra},
                                 "required": [next(iter(extra))] if kind != "final" else []}]}
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": defs,
              "oneOf": [{"$ref": f"#/definitions/{k}"} for k in ("atomic", "compound", "final")]}
    instances = [{"id": "s", "type": t, **extra} for t in ("atomic", "compound", "final", "other")
                 for extra in ({}, {"on": {}}, {"states": {}}, {"data": 1}, {"data": "x"}, {"on": {}, "states": {}})]
    instances += [{"type": "final"}, {"id": 1, "type": "final"}, [], "final"]
    check(schema, instances)


@pytest.mark.parametrize("dialect", ["draft7", "2020-12"])
def test_dependencies_that_restrict_one_key_split_by_its_value(dialect):
    # each key present needs "type" in its set (a JsonSchemaStore search-index definition has 17
    # of these: 2**17 alternatives key by key, past the budget); t's own dependency included
    sets = {"analyzer": ["auto", "string"], "maxGrams": ["auto"], "dynamic": ["doc", "embedded"],
            "store": ["string"], "multi": ["string"], "type": ["auto", "doc", "string", "embedded"]}
    deps = {k: {"properties": {"type": {"enum": v}}} for k, v in sets.items()}
    deps["dynamic"] = {"properties": {"type": {"type": "string", "enum": ["doc", "embedded", 3]}}}
    schema = {"type": "object", "properties": {k: {} for k in sets}}
    if dialect == "draft7":
        schema.update({"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": deps})
    else:
        schema["dependentSchemas"] = deps
    rnd = __import__("random").Random(3)
    values = ["auto", "string", "doc", "embedded", "other", 3]
    instances = [{}, [], "x", {"type": "other"}, {"type": 3}, {"dynamic": True}, {"type": 3, "dynamic": 1}]
    for _ in range(150):
        inst = {k: 1 for k in rnd.sample(sorted(set(sets) - {"type"}), rnd.randint(0, 3))}
        if rnd.random() < 0.8:
            inst["type"] = rnd.choice(values)
        instances.append(inst)
    check(schema, instances)


def test_default_key_sets_of_four_or_more_keys_are_built_as_parsed(llama3_vocab):
    """By default an any-order object of 4+ tracked keys is a KeySetFamily (a document visits a
    chain of its 2^n key sets), and the compiled matcher accepts exactly what jsonschema does:
    permutations, repeats, missing required keys, dependencies, extra keys, three serializations."""
    import corral

    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in ("a", "b", "c", "d", "e", "f")},
              "required": ["b", "e"], "dependentRequired": {"c": ["f"]}, "additionalProperties": {"type": "string"}}
    grammar = json_schema_to_grammar(schema).grammar
    assert any(type(f).__name__ == "KeySetFamily" for f in grammar.families.values())
    eager = json_schema_to_grammar(schema, eager_key_set_alternatives=None).grammar
    assert not eager.families
    compiled = corral.compile_json_schema(schema, llama3_vocab)
    validator = jsonschema.Draft202012Validator(schema)
    rnd = __import__("random").Random(7)
    instances = [{}, {"b": 1, "e": 2}, {"e": 2, "b": 1, "c": 3}, {"e": 2, "b": 1, "c": 3, "f": 4}, {"b": 1, "e": "x"},
                 {"b": 1, "e": 2, "zz": "s"}, {"b": 1, "e": 2, "zz": 5}]
    for _ in range(60):
        keys = rnd.sample(["a", "c", "d", "f", "zz"], rnd.randint(0, 5)) + [k for k in "be" if rnd.random() < 0.85]
        rnd.shuffle(keys)
        instances.append({k: rnd.choice([1, 1, 1, "s"] if k != "zz" else ["s", "s", 1]) for k in keys})
    assert sum(validator.is_valid(i) for i in instances) >= 10
    for inst in instances:
        want = validator.is_valid(inst)
        for text in (json.dumps(inst), json.dumps(inst, separators=(",", ":")), json.dumps(inst, indent=2)):
            matcher = compiled.matcher()
            assert (matcher.accept_string(text) and matcher.is_accepting()) == want, (text, want)
        if "b" in inst:  # a tracked key never repeats
            matcher = compiled.matcher()
            assert not (matcher.accept_string(json.dumps(inst)[:-1] + ', "b": 1}') and matcher.is_accepting())


def test_minimal_escapes_spell_every_string_as_json_dumps_writes_it():
    """``escapes="minimal"`` (a generation default): keys, enum and const values, free, pattern,
    short and long counted strings take exactly json.dumps(..., ensure_ascii=False)'s spelling
    (lark's parser as the oracle); the default takes every JSON spelling of the same values."""
    texts = ['say "hi"\\now', "tab\there\n", "\x01ctl\x1f", "é ünï 😀", "a/b", "plain"]
    long_text = "x" * 70 + '"q"\\' + "é" * 10
    schema = {"type": "object", "additionalProperties": False, "properties": {
        "e": {"enum": texts}, "c": {"const": texts[0]}, "f": {"type": "string"},
        "p": {"type": "string", "pattern": "^[^0-9]*$"}, "m": {"type": "string", "maxLength": 12},
        "long": {"type": "string", "maxLength": 200}, texts[1]: {"type": "integer"}}}
    minimal = LarkOracle(json_schema_to_grammar(schema, escapes="minimal").grammar.expanded())
    every = LarkOracle(json_schema_to_grammar(schema).grammar.expanded())
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    instances = [{"e": t} for t in texts] + [{"c": texts[0]}, {"f": texts[2]}, {"p": texts[0]},
                                              {"m": texts[1]}, {"long": long_text}, {texts[1]: 3},
                                              {"f": texts[3], "p": texts[4], "long": texts[0]}]
    for inst in instances:
        assert validator.is_valid(inst), inst
        canonical = json.dumps(inst, ensure_ascii=False)
        assert minimal.accepts(canonical) and every.accepts(canonical), canonical
        # other spellings of the same document: ASCII escapes of non-ASCII, \\u escapes of letters
        # and of the characters with a short escape, an escaped slash
        others = {json.dumps(inst), canonical.replace('"plain"', '"pl\\u0061in"'),
                  canonical.replace("\\n", "\\u000a"), canonical.replace("\\\\", "\\u005c"),
                  canonical.replace("a/b", "a\\/b"), canonical.replace('"f"', '"\\u0066"')} - {canonical}
        others = {text for text in others if json.loads(text) == inst}  # (a replace can hit an escape's tail)
        checked += len(others)
        for text in others:
            assert every.accepts(text) and not minimal.accepts(text), text
    assert checked >= 12  # (16 other spellings here)
    with pytest.raises(ValueError, match="escapes"):
        json_schema_to_grammar({"type": "string"}, escapes="none")
