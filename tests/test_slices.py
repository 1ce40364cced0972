"""Token slices (corral.masks.slices) and the skipping trie walk, against brute force on Llama-3;
JSON spelling automata (corral.grammars.json_schema.spelling) against the regex route."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from corral.automata.dfa import _build, regex_to_dfa
from corral.grammars import regex_ast as rx
from corral.grammars.json_schema import cpdfa, spelling, strings as st
from corral.grammars.regex_parser import parse_regex
from corral.grammars.sampling import sample_regex
from corral.masks.slices import slice_safe_length_reference, slice_safe_reference, string_slice
from corral.masks.trie_walk import walk_trie_with_dfa, walk_trie_with_dfa_skipping

COLON = rx.seq(rx.repeat(rx.char_set(" \t\n\r"), 0, 8), rx.literal(":"), rx.repeat(rx.char_set(" \t\n\r"), 0, 8))
ANY = rx.star(rx.any_char())
# (positive regexes, negative regexes) of decoded key languages, as the JSON Schema compiler makes them
REGIONS = [
    ([ANY], [rx.literal(k) for k in ["name", "age", "city", "e\u00e9", "\U0001F600x", 'a"b', "tab\t", "\u0800\uffff"]]),
    ([ANY], [rx.literal(k) for k in ["controller", "parent", "control"]]),
    ([parse_regex("x-[a-z]+")], [rx.literal("x-abc")]),
    ([parse_regex("[\U00010000-\U0001F000]+\\d")], [parse_regex("\U00010400.*")]),
    ([parse_regex("[^a]{2,5}")], [rx.literal("bb")]),
    ([ANY], [parse_regex("[\u00e0-\u0fff]+"), rx.literal("\\")]),
]


def _in_slice_oracle(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(ord(c) >= 0x20 and c not in '"\\' for c in text)


def test_string_slice_is_exactly_the_raw_json_string_tokens(llama3_vocab):
    sl = string_slice(llama3_vocab)
    in_trie = set(llama3_vocab.trie.tok_ids.tolist())
    bits = np.unpackbits(sl.bits.view(np.uint8), bitorder="little")[:llama3_vocab.size]
    expected = np.array([t in in_trie and _in_slice_oracle(llama3_vocab.token_bytes(t))
                         for t in range(llama3_vocab.size)])
    assert np.array_equal(bits.astype(bool), expected)
    assert sl.n_tokens == int(expected.sum()) > 0.8 * llama3_vocab.size
    # node_full: every token of the subtree is in the slice (checked on a sample of nodes)
    trie = llama3_vocab.trie
    rng = np.random.default_rng(1)
    for node in rng.choice(trie.num_nodes, 400, replace=False).tolist():
        start, stop = int(trie.node_tok_start[node]), int(trie.node_tok_end[trie.node_skip[node] - 1])
        subtree = trie.tok_ids[start:stop]
        assert bool(sl.node_full[node]) == (node != 0 and bool(expected[subtree].all()))


def _terminal_dfas():
    yield regex_to_dfa(st.quoted(ANY))
    yield regex_to_dfa(st.quoted(parse_regex("https?://.*")))
    yield regex_to_dfa(st.quoted(rx.repeat(rx.any_char(), 0, 300)))
    yield regex_to_dfa(parse_regex(r"[0-9]+"))
    for pos, neg in REGIONS[:2]:
        yield _build(spelling.quoted_automaton(cpdfa.combine(pos, neg), COLON), 20000, 60)


@pytest.mark.parametrize("which", range(6))
def test_slice_safe_and_skipping_walk_equal_their_references(llama3_vocab, which):
    sl = string_slice(llama3_vocab)
    dfa = list(_terminal_dfas())[which]
    trie = llama3_vocab.trie
    n_safe = 0
    states = range(dfa.n_states) if dfa.n_states <= 60 else random.Random(which).sample(range(dfa.n_states), 60)
    for q in states:
        safe = sl.safe(dfa.transitions, dfa.accepting, q)
        assert safe == slice_safe_reference(dfa.transitions, dfa.accepting, q, sl.c_transitions, sl.c_accepting,
                                            sl.max_len)
        if not safe:
            continue
        n_safe += 1
        full = np.zeros_like(sl.bits)
        full_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, full)
        skipped = sl.bits.copy()
        skipped_bounds = walk_trie_with_dfa_skipping(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, skipped,
                                                     sl.skip_len, sl.max_len)
        assert np.array_equal(full, skipped)
        assert np.array_equal(full_bounds, skipped_bounds)
    # the string bodies are where the slice pays: some states must qualify
    assert n_safe > 0 or which == 3


BOUNDED_STRINGS = [st.quoted(rx.repeat(rx.any_char(), 0, 40)), st.quoted(rx.repeat(rx.any_char(), 3, 90)),
                   rx.seq(st.quoted(rx.repeat(rx.any_char(), 0, 20)), rx.literal(",")),
                   rx.seq(st.quoted(rx.repeat(rx.any_char(), 5, 60)), rx.literal(":"))]


@pytest.mark.parametrize("which", range(len(BOUNDED_STRINGS)))
def test_slice_up_to_a_length_inside_bounded_strings_equals_the_full_walk(llama3_vocab, which):
    """Inside a string of bounded length the slice is safe up to the remaining length only: the
    walk takes the slice tokens up to that many bytes and skips the subtrees holding no longer ones.
    The safe length equals its oracle's, and masks and boundary nodes equal the plain walk's."""
    sl = string_slice(llama3_vocab)
    dfa = regex_to_dfa(BOUNDED_STRINGS[which])
    trie = llama3_vocab.trie
    lengths = []
    states = [0]
    for k in range(100):  # the opening quote, then a letter at a time: each a new counted state
        q = int(dfa.transitions[states[-1], ord('"') if k == 0 else ord("a")])
        if q < 0:
            break
        states.append(q)
    for q in states[::3] + random.Random(which).sample(range(dfa.n_states), min(dfa.n_states, 8)):
        length = sl.safe_length(dfa.transitions, dfa.accepting, q)
        assert length == slice_safe_length_reference(dfa.transitions, dfa.accepting, q, sl.c_transitions, sl.max_len)
        lengths.append(length)
        if length < 1:
            continue
        full = np.zeros_like(sl.bits)
        full_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, full)
        capped = sl.bits_upto(length).copy()
        capped_bounds = walk_trie_with_dfa_skipping(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, capped,
                                                    sl.skip_len, length)
        assert np.array_equal(full, capped)
        assert np.array_equal(full_bounds, capped_bounds)
    assert any(0 < n < sl.max_len for n in lengths)  # the capped case did occur


def test_bits_upto_a_length_are_the_short_slice_tokens(llama3_vocab):
    sl = string_slice(llama3_vocab)
    for length in (1, 3, 17, sl.max_len):
        bits = np.unpackbits(sl.bits_upto(length).view(np.uint8), bitorder="little")[:llama3_vocab.size]
        expected = [t for t in np.flatnonzero(np.unpackbits(sl.bits.view(np.uint8), bitorder="little")
                                              [:llama3_vocab.size]) if len(llama3_vocab.token_bytes(int(t))) <= length]
        assert np.flatnonzero(bits).tolist() == [int(t) for t in expected]
    # skip_len: the longest token below a node whose subtree is all slice tokens (sampled nodes)
    trie = llama3_vocab.trie
    for node in np.random.default_rng(2).choice(trie.num_nodes, 300, replace=False).tolist():
        start, stop = int(trie.node_tok_start[node]), int(trie.node_tok_end[trie.node_skip[node] - 1])
        if sl.node_full[node]:
            longest = max(len(llama3_vocab.token_bytes(int(t))) for t in trie.tok_ids[start:stop])
            assert sl.skip_len[node] == longest
        else:
            assert sl.skip_len[node] > sl.max_len


@pytest.mark.parametrize("case", range(len(REGIONS)))
def test_spelling_automaton_equals_the_quoted_regex_route(case):
    """Both minimal byte DFAs of '"' + spellings + '"' + colon are isomorphic."""
    positives, negatives = REGIONS[case]
    d = cpdfa.combine(positives, negatives)
    by_regex = _build(rx.seq(st.quoted(d.to_regex(max_nodes=8000)), COLON), 20000, 60)
    auto = spelling.quoted_automaton(d, COLON)
    direct = _build(auto, 20000, 60)
    assert direct.n_states == by_regex.n_states
    mapping, stack = {0: 0}, [0]
    while stack:
        a = stack.pop()
        b = mapping[a]
        assert direct.accepting[a] == by_regex.accepting[b]
        for byte in range(256):
            x, y = int(direct.transitions[a, byte]), int(by_regex.transitions[b, byte])
            assert (x < 0) == (y < 0)
            if x >= 0:
                if x not in mapping:
                    mapping[x] = y
                    stack.append(x)
                assert mapping[x] == y
    # the Automaton node's own views agree with its language
    pattern = re.compile(rx.to_python_regex(auto), re.S)
    rnd = random.Random(case)
    for _ in range(30):
        text = sample_regex(auto, rnd)
        assert pattern.fullmatch(text)
        assert direct.matches(text.encode("utf-8"))
    assert rx.min_length(auto) == rx.min_length(rx.seq(st.quoted(d.to_regex(max_nodes=8000)), COLON))


@pytest.mark.parametrize("text", ["parameters", "GeometryPresentation.createPresentation", "", "na\u00efve_\u043a\u043b\u044e\u0447",
                                  'a"b\\c/\n\t\x00', "\U0001F600x\U00010000", "\u0800\uffff\u00e9"])
def test_literal_automaton_equals_the_quoted_literal_regex(text):
    by_regex = regex_to_dfa(st.literal_string(text))
    direct = _build(spelling.literal_automaton(text), 20000, 60)
    assert direct.n_states == by_regex.n_states  # both minimal
    spellings = [text, "".join("\\u%04x" % ord(c) if ord(c) < 0x10000 else c for c in text),
                 "".join("\\u%04X" % ord(c) if ord(c) < 0x10000 else c for c in text)]
    import json
    spellings.append(json.dumps(text)[1:-1])
    spellings.append(json.dumps(text, ensure_ascii=False)[1:-1])
    for body in spellings:
        data = ('"' + body + '"').encode("utf-8", "surrogatepass")
        assert direct.matches(data) == by_regex.matches(data)
    assert direct.matches(json.dumps(text).encode()) and direct.matches(json.dumps(text, ensure_ascii=False).encode())
    assert not direct.matches(json.dumps(text + "x").encode())


def test_literal_automaton_equals_its_edge_list_route():
    """The dict-grouped literal automaton is the ``_tabulate`` route's, class for class and state for
    state, with the same shortest length, on random texts of escapes, hex-letter look-alikes,
    control characters, astral characters and lone surrogates."""
    rnd = random.Random(1)
    alphabet = list("abcdefuABCDEFU0189/\\\"\b\f\n\r\t\x00\x1f ~\u00e9\u20ac\U0001F600\U0010FFFF") + [
        "\ud800", "\udfff", "\uffff", "\u0080"]
    texts = ["", "u", "bfnrt", "x-amazon-apigateway-integration"]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12))) for _ in range(400)]
    for text in texts:
        direct, by_edges = spelling.literal_automaton.__wrapped__(text), spelling._literal_automaton_edges(text)
        assert direct == by_edges, repr(text)
        assert rx.min_length(direct) == rx._min_length(by_edges), repr(text)


def test_automaton_node_lengths_and_composition():
    """An Automaton inside a composition stands for its regex; its length bounds are its own."""
    from corral.automata.dfa import _max_length

    lit = spelling.literal_automaton("ab")
    assert rx.min_length(lit) == 4 and _max_length(lit) == 4 + 2 * 5  # "ab" or "\\u0061\\u0062"
    region = spelling.quoted_automaton(cpdfa.combine([ANY], [rx.literal("a")]))
    assert rx.min_length(region) == 2 and _max_length(region) is None
    both = regex_to_dfa(rx.seq(lit, rx.literal(":"), region))
    assert both.matches(b'"ab":"b"') and both.matches(b'"a\\u0062":""') and not both.matches(b'"ab":"a"')
    assert not both.matches(b'"ab":"\\u0061"')


def _isomorphic(a, b) -> bool:
    """Two trimmed byte DFAs (start state 0) accept the same language with the same states."""
    if a.n_states != b.n_states:
        return False
    mapping, stack, visited = {0: 0}, [0], {0}
    while stack:
        x = stack.pop()
        y = mapping[x]
        if bool(a.accepting[x]) != bool(b.accepting[y]):
            return False
        row_a, row_b = a.transitions[x], b.transitions[y]
        if not np.array_equal(row_a < 0, row_b < 0):
            return False
        for byte in np.flatnonzero(row_a >= 0).tolist():
            u, v = int(row_a[byte]), int(row_b[byte])
            if mapping.setdefault(u, v) != v:
                return False
            if u not in visited:
                visited.add(u)
                stack.append(u)
    return True

_LITERAL_SETS = [
    ("enable", "disable", "tenable", "able", "a"),
    ("ai_Foo", "ai_Bar", "ag_Foo", "ac_Bar", "Foo", "Bar", "_Foo"),
    ('q"uote', "back\\slash", "tab\tnl\n", "\x00ctl", "sl/ash", "plain"),
    ("\U0001F600", "\U0001F601x", "\U00010000", "x\U0001F600", "\u00e9t\u00e9", "\u0800\uffff", "ete"),
    ("", "x", "xy"),
]


@pytest.mark.parametrize("case", range(len(_LITERAL_SETS) + 2))
def test_literals_automaton_is_minimal_and_equals_the_regex_route(case):
    if case < len(_LITERAL_SETS):
        texts = tuple(sorted(set(_LITERAL_SETS[case])))
    else:  # identifier-like enums sharing prefixes and suffixes (the cvar enums of real schemas)
        rnd = random.Random(case)
        parts = ["ai_", "ag_", "r_", "Debug", "Draw", "Enable", "Force", "Lock", "e", "\u00e9", "x"]
        texts = tuple(sorted({"".join(rnd.choice(parts) for _ in range(rnd.randint(1, 5))) for _ in range(300)}))
    auto = spelling.literals_automaton(texts)
    assert auto.minimal
    direct = _build(auto, 200_000, 60)  # minimization skipped: the builder vouches for it
    hopcroft = _build(rx.Automaton(auto.table, auto.classes, auto.accepting, False), 200_000, 60)
    by_regex = regex_to_dfa(rx.alt(*(st.literal_string(t) for t in texts)), 200_000)
    assert _isomorphic(direct, hopcroft)
    assert _isomorphic(direct, by_regex)
    import json
    for t in texts:
        for data in (json.dumps(t).encode(), json.dumps(t, ensure_ascii=False).encode("utf-8", "surrogatepass")):
            assert direct.matches(data)
    assert not direct.matches(json.dumps("".join(texts) + "\u2603").encode())


_KEY_SETS = _LITERAL_SETS + [
    ("\ud55c\uad6d\uc5b4", "\ud55c", "\u7d22\u5f15"),  # children under the surrogate digit (D000-D7FF)
    ("\ue000", "\uffff", "\ufeffbom", "z"),  # above the surrogates
    ("\U0001F600", "\U0001F600\U0001F601", "\U000E0001", "\U0010FFFF"),  # several astral windows
    ("type", "properties", "required", "items", "enum", "default", "title", "format", "\"", "\\", "/", "\b\f\n\r\t"),
]


@pytest.mark.parametrize("case", range(len(_KEY_SETS) + 2))
def test_keys_except_automaton_is_minimal_and_equals_the_general_route(case):
    """"Any key but these" built from the keys is the spelling of the code-point complement
    (cpdfa.combine, then quoted_automaton), and minimal as its builder claims."""
    if case < len(_KEY_SETS):
        texts = tuple(sorted(set(_KEY_SETS[case])))
    else:
        rnd = random.Random(case)
        parts = ["id", "Id", "_", "name", "url", "x", "\u00e9", "s", "Type", "\u4e2d"]
        texts = tuple(sorted({"".join(rnd.choice(parts) for _ in range(rnd.randint(1, 4))) for _ in range(150)}))
    auto = spelling.keys_except_automaton(texts)
    assert auto.minimal
    direct = _build(auto, 200_000, 60)
    hopcroft = _build(rx.Automaton(auto.table, auto.classes, auto.accepting, False), 200_000, 60)
    general = _build(spelling.quoted_automaton(cpdfa.combine([], [rx.literal(t) for t in texts])), 200_000, 60)
    reference = spelling._keys_except_automaton_reference(texts)
    assert _isomorphic(direct, hopcroft)
    assert _isomorphic(direct, general)
    assert _isomorphic(direct, _build(rx.Automaton(reference.table, reference.classes, reference.accepting), 200_000, 60))
    assert len(auto.accepting) <= len(reference.accepting) and auto._min_length == reference._min_length
    import json
    for t in texts:
        for data in (json.dumps(t).encode(), json.dumps(t, ensure_ascii=False).encode()):
            assert not direct.matches(data)
        for other in (t + "x", t[:-1] + "\u2603", "\u00e9" + t):
            assert direct.matches(json.dumps(other).encode()) == (other not in texts)
    assert direct.matches(b'"\\ud83d\\ude00"') == ("\U0001F600" not in texts)
    assert not direct.matches(b'"\\udc00"') and not direct.matches(b'"\\ud800x"')


@pytest.mark.parametrize("texts", [
    ("a", "ab", "xab"),  # the nodes after "a" and "xa" differ only in finality: one escape branch
    ("aq", "ar", "bq", "bs", "b"),  # equal hex leaves under different escape branches
    ("", "a", "\u00e9", "\U0001F600", "\U0001F600a", "\ue000z", "\ud7ff"),
    ("a", "\U0001F600a"),  # 'a' spelled under the root (astral route) and under the emoji alike
])
def test_keys_except_templates_share_equal_states_across_nodes(texts):
    """The escape branches stamped from templates merge states equal across DAWG nodes, whichever
    route built them: the automaton is minimal (the state-by-state builder's was not beside an
    astral child: 37 code-point states where 34 do) and accepts what the reference accepts."""
    auto = spelling._keys_except_automaton(texts)
    reference = spelling._keys_except_automaton_reference(texts)
    hopcroft = _build(rx.Automaton(auto.table, auto.classes, auto.accepting, False), 200_000, 60)
    reference_minimized = _build(rx.Automaton(reference.table, reference.classes, reference.accepting), 200_000, 60)
    assert len(auto.accepting) <= len(reference.accepting)
    assert _isomorphic(_build(auto, 200_000, 60), hopcroft)
    assert _isomorphic(hopcroft, reference_minimized)


def test_keys_except_automaton_refuses_lone_surrogates():
    with pytest.raises(ValueError, match="lone surrogate"):
        spelling.keys_except_automaton(("a\ud800",))


@pytest.mark.parametrize("case", range(len(REGIONS)))
def test_vectorized_tabulation_equals_the_range_by_range_reference(case, monkeypatch):
    """The spelling automaton's table filled from flat numpy arrays is the one filled one range at a
    time: same transitions, same classes, same order."""
    seen = []
    real = spelling._tabulate

    def capture(edges, accepting, minimal=True):
        seen.append((edges, accepting, minimal))
        return real(edges, accepting, minimal)

    monkeypatch.setattr(spelling, "_tabulate", capture)
    positives, negatives = REGIONS[case]
    spelling.quoted_automaton(cpdfa.combine(positives, negatives), COLON)
    spelling.literals_automaton(("alpha", "beta\u00e9", "g\U0001F600", 'q"x'))
    assert seen
    for edges, accepting, minimal in seen:
        fast = real(edges, accepting, minimal)
        ref = spelling._tabulate_reference(edges, accepting, minimal)
        assert (fast.table, fast.classes, fast.accepting) == (ref.table, ref.classes, ref.accepting)


def test_spelling_automata_are_shared_across_equal_regions():
    """Key regions of equal content (built separately, e.g. by two schemas declaring the same keys)
    get the one cached spelling automaton, equal to a fresh build; a budget error is remembered."""
    positives, negatives = REGIONS[0]
    d = cpdfa.combine(list(positives), list(negatives))
    first = spelling.quoted_automaton_cached(d)
    copy = cpdfa.Dfa(d.atoms, [list(row) for row in d.trans], list(d.accept))  # same content
    again = spelling.quoted_automaton_cached(copy)
    assert again is first
    fresh = spelling.quoted_automaton(copy)
    assert (fresh.table, fresh.classes, fresh.accepting) == (first.table, first.classes, first.accepting)


# -- class slices: the class a DFA state repeats (email local parts, words, `^[a-z0-9-]+$`) ----------
CLASS_REGEXES = [
    r"[a-z0-9._%+-]{1,20}@[a-z0-9-]{1,15}(\.[a-z]{2,6}){1,2}",
    r"[A-Z][a-z]{1,10}( [a-z]{1,10}){2,12}[.!?]",
    r'"[a-z0-9-]{3,30}"',
    r"[a-zA-Z_][a-zA-Z0-9_]*( [a-zA-Z_][a-zA-Z0-9_]*)*;",
    r'"([a-z]+ )*[a-z]+"',
    r'#[0-9a-fA-F]{6}|"[a-z]{2,40}"',
]


@pytest.mark.parametrize("cls, leading_space, max_len", [("[ab]", False, 7), ("[ab]", True, 7), ("[a-c]", True, 5)])
def test_slice_safe_length_and_exactness_equal_enumeration(cls, leading_space, max_len):
    """(L, exact) per kind against enumerating every slice string of each length (small classes)."""
    from corral.masks.slices import slice_safe_length, slice_safe_length_exact_reference

    language = rx.star(parse_regex(cls))
    c_dfa = regex_to_dfa(rx.seq(rx.repeat(rx.literal(" "), 0, 1), language) if leading_space else language)
    kinds = ((-1, 0x20), (0x20, -1)) if leading_space else ((-1, -1),)
    outcomes = set()
    patterns = [r"[ab]{0,4}( [ab]{1,3}){0,2}c", r"a{2,5}b?", r"( ?[abc]{1,3})+;", r"[ab]*", r"(ab)+ ?c", r"b|ba{1,6}",
                r"[ab][ab]{0,4}", r"a[abc]*|c"]
    for pattern in patterns:
        dfa = regex_to_dfa(parse_regex(pattern))
        for q in range(dfa.n_states):
            for only, never in kinds:
                for want_accepting in (False, True):  # (True: runs that all end a lexeme, identifiers)
                    got = slice_safe_length(dfa.transitions, dfa.accepting, np.int32(q), c_dfa.transitions,
                                            np.int32(max_len), np.int32(only), np.int32(never), want_accepting)
                    want = slice_safe_length_exact_reference(dfa.transitions, dfa.accepting, q, c_dfa.transitions,
                                                             max_len, only, never, want_accepting)
                    assert (int(got[0]), bool(got[1])) == want, (pattern, q, only, never, want_accepting)
                    outcomes.add((want_accepting, want[0] > 0, want[1]))
    assert {e for _, _, e in outcomes} == {True, False} and (True, True, True) in outcomes


def test_repeatable_ascii_bytes_is_the_run_class():
    from corral.masks.slices import repeatable_ascii_bytes

    dfa = regex_to_dfa(parse_regex(CLASS_REGEXES[0]))
    q = 0
    for b in b"ab":
        q = int(dfa.transitions[q, b])
    got = bytes(np.flatnonzero(repeatable_ascii_bytes(dfa.transitions, np.int32(q))).tolist())
    assert got == bytes(sorted(b"abcdefghijklmnopqrstuvwxyz0123456789._%+-"))  # not the one-off '@'
    dfa = regex_to_dfa(parse_regex(CLASS_REGEXES[1]))
    q = 0
    for b in b"Ab":
        q = int(dfa.transitions[q, b])
    assert bytes(np.flatnonzero(repeatable_ascii_bytes(dfa.transitions, np.int32(q))).tolist()) == b"abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("leading_space", [False, True])
def test_class_slice_tokens_kinds_and_lengths_equal_brute_force(llama3_vocab, leading_space):
    from corral.masks.slices import class_slices

    byte_class = np.zeros(256, dtype=np.bool_)
    byte_class[list(b"abcdefghijklmnopqrstuvwxyz")] = True
    sl = class_slices(llama3_vocab).get(byte_class, leading_space)
    pattern = re.compile(rb" ?[a-z]*" if leading_space else rb"[a-z]+")  # a lone space is in ` ?C*`
    in_trie = set(llama3_vocab.trie.tok_ids.tolist())
    by_kind = [dict(), dict()]
    for t in range(llama3_vocab.size):
        data = llama3_vocab.token_bytes(t)
        if t in in_trie and data and pattern.fullmatch(data):
            by_kind[int(data[:1] == b" ")][t] = len(data)
    assert sl.n_kinds == (2 if leading_space else 1) and not (not leading_space and by_kind[1])
    kinds = sl.n_kinds
    for lengths in ([1] * kinds, [4] * kinds, [9, 3][:kinds], [sl.max_len] * kinds, [0, 7][:kinds], [17, 64][:kinds],
                    [33, 2][:kinds], [100, 16][:kinds], [8, 8][:kinds], [4, 9][:kinds]):  # (checkpoints 4..64 and between)
        unpacked = np.unpackbits(sl.bits_for(lengths).view(np.uint8), bitorder="little")
        got = np.flatnonzero(unpacked[:llama3_vocab.size])
        want = sorted(t for k in range(sl.n_kinds) for t, n in by_kind[k].items() if n <= lengths[k])
        assert got.tolist() == want
        assert sl.covered(lengths) == len(want)
    trie = llama3_vocab.trie
    for node in np.random.default_rng(3).choice(trie.num_nodes, 300, replace=False).tolist():
        start, stop = int(trie.node_tok_start[node]), int(trie.node_tok_end[trie.node_skip[node] - 1])
        below = [int(t) for t in trie.tok_ids[start:stop]]
        full = node != 0 and all(t in by_kind[0] or t in by_kind[1] for t in below)
        assert bool(sl.node_full[node]) == full
        if full:
            assert sl.skip_len[node] == max(len(llama3_vocab.token_bytes(t)) for t in below)


@pytest.mark.parametrize("which", range(len(CLASS_REGEXES)))
def test_class_slice_walks_equal_the_plain_walk(llama3_vocab, which):
    """From states along sampled members (each a new counted state) and random states: the walk
    with the chosen class slice (its tokens up to each kind's safe length, all-slice subtrees
    skipped) marks the same tokens and reports the same boundary nodes as the plain walk."""
    from corral.masks.slices import class_slices
    from corral.masks.trie_walk import walk_trie_residual, walk_trie_with_dfa_slice

    dfa = regex_to_dfa(parse_regex(CLASS_REGEXES[which]))
    trie = llama3_vocab.trie
    rnd = random.Random(which)
    states = set(rnd.sample(range(dfa.n_states), min(dfa.n_states, 12)))
    for _ in range(3):
        q = 0
        for b in sample_regex(parse_regex(CLASS_REGEXES[which]), rnd).encode():
            q = int(dfa.transitions[q, b])
            states.add(q)
    chosen = residual = 0
    for q in sorted(states):
        plain = np.zeros((llama3_vocab.size + 31) // 32, dtype=np.uint32)
        plain_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, plain)
        choice = class_slices(llama3_vocab).choose(dfa.transitions, dfa.accepting, q, 2)
        if choice is None:
            continue
        chosen += 1
        sl, lengths = choice
        bits = sl.bits_for([n for n, _ in lengths])
        bounds = walk_trie_with_dfa_slice(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, bits,
                                          sl.skip_len, sl.skip_upto(lengths))
        assert np.array_equal(plain, bits), (which, q, lengths)
        assert np.array_equal(plain_bounds, bounds), (which, q)
        upto = sl.skip_upto(lengths)
        if sl.decides_every_subtree(upto):  # the walk over the trie without the slice's subtrees
            residual += 1
            packed_info, _, packed_tok = _packed(llama3_vocab)[:3]
            got = sl.bits_for([n for n, _ in lengths])
            got_bounds = walk_trie_residual(*sl.residual(trie, packed_info, packed_tok), packed_tok,
                                            trie.node_tok_start, trie.node_tok_end, trie.tok_ids,
                                            dfa.transitions, dfa.accepting, q, got)
            assert np.array_equal(plain, got), (which, q, lengths)
            assert np.array_equal(plain_bounds[:, 0], got_bounds), (which, q)  # (nodes: no DFA states)
    assert chosen > 0 or which == 3  # identifiers end a lexeme at every byte: no slice is safe
    # counted runs of a class decide every subtree of its slice (the sentence and e-mail rows)
    assert residual > 0 or which not in (0, 1)


def _packed(vocab):
    from corral.masks.trie_walk import packed_trie_arrays

    return packed_trie_arrays(vocab.trie)


@pytest.mark.parametrize("leading_space", [False, True])
def test_residual_trie_is_the_trie_without_the_slice_only_subtrees(llama3_vocab, leading_space):
    """Kept nodes are the root and every node some non-slice token lies below, in pre-order; each
    skip pointer is the first kept node after the node's subtree; the flags say whether the node
    holds a token and has children (checked against the trie node by node)."""
    from corral.masks.slices import RESIDUAL_HAS_CHILDREN, RESIDUAL_HAS_TOKEN, class_slices

    trie = llama3_vocab.trie
    byte_class = np.zeros(256, dtype=np.bool_)
    byte_class[list(b"abcdefghijklmnopqrstuvwxyz")] = True
    packed = _packed(llama3_vocab)
    for sl in (class_slices(llama3_vocab).get(byte_class, leading_space), string_slice(llama3_vocab)):
        info, skip, nodes = sl.residual(trie, packed[0], packed[2])
        kept = np.flatnonzero(~sl.node_full)
        assert kept[0] == 0 and np.array_equal(nodes, kept)
        # ancestors of kept nodes are kept: a kept node's parent is kept
        assert np.isin(trie.node_parent[kept[1:]], kept).all()
        want_skip = np.searchsorted(kept, trie.node_skip[kept])
        assert np.array_equal(skip, want_skip)
        assert np.array_equal(info & 0xFFFFFF, packed[0][kept])
        assert np.array_equal((info & RESIDUAL_HAS_TOKEN) != 0, packed[2][kept] != -1)
        assert np.array_equal((info & RESIDUAL_HAS_CHILDREN) != 0, trie.node_skip[kept] > kept + 1)


@pytest.mark.parametrize("which", range(len(CLASS_REGEXES)))
def test_masks_with_and_without_class_slices_are_equal(llama3_tokenizer, llama3_vocab, which):
    import corral
    from corral.masks.matcher import CompiledGrammar

    base = corral.compile_regex(CLASS_REGEXES[which], llama3_vocab)
    for use in (True, False):  # each from empty per-vocabulary walk caches
        llama3_vocab.cache.pop("corral.root_walks", None)
        llama3_vocab.cache.pop("corral.sub_walks", None)
        g = CompiledGrammar(base.grammar, llama3_vocab)
        g.use_class_slices = use
        masks = []
        for text in [sample_regex(parse_regex(CLASS_REGEXES[which]), random.Random(7 * k + which)) for k in range(3)]:
            m = g.matcher()
            for t in llama3_tokenizer.encode(text, add_special_tokens=False):
                masks.append(m.next_token_bits().copy())
                assert m.accept_token(t)
            assert m.is_accepting()
        if use:
            with_slices = masks
    llama3_vocab.cache.pop("corral.root_walks", None)
    assert len(masks) == len(with_slices) and all(np.array_equal(a, b) for a, b in zip(masks, with_slices))


IDENTIFIER_REGEXES = [r"[a-z_][a-z0-9_]{0,20}", r"[a-zA-Z_][a-zA-Z0-9_]*", r"[a-z]{2,12}"]


@pytest.mark.parametrize("vocab_name", ["llama3", "mistral", "qwen"])
def test_accepting_class_slice_walks_leave_out_only_boundaries_inside_the_class(request, vocab_name):
    """Where every run of a state's class ends the lexeme (identifiers), the slice walk gives the
    plain walk's tokens, and its boundary nodes are the plain walk's minus nodes whose subtree is
    all slice tokens (their continuation starts with a class byte: the caller checks that)."""
    from corral.masks.slices import class_slices
    from corral.masks.trie_walk import walk_trie_with_dfa_slice

    vocab = request.getfixturevalue(f"{vocab_name}_vocab")
    trie = vocab.trie
    chosen = 0
    for pattern in IDENTIFIER_REGEXES:
        dfa = regex_to_dfa(parse_regex(pattern))
        slices = class_slices(vocab)
        for q in range(dfa.n_states):
            choice = slices.choose(dfa.transitions, dfa.accepting, q, 2, accepting_runs=True)
            if choice is None or len(choice) == 2:
                continue
            chosen += 1
            sl, lengths, byte_class = choice
            assert len(lengths) == 1 and all(dfa.accepting[dfa.transitions[q, b]] for b in np.flatnonzero(byte_class))
            plain = np.zeros((vocab.size + 31) // 32, dtype=np.uint32)
            plain_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, plain)[:, 0]
            bits = sl.bits_for([n for n, _ in lengths])
            bounds = walk_trie_with_dfa_slice(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, bits,
                                              sl.skip_len, sl.skip_upto(lengths))[:, 0]
            assert np.array_equal(plain, bits), (pattern, q)
            left_out = np.setdiff1d(plain_bounds, bounds)
            assert np.isin(bounds, plain_bounds).all() and sl.node_full[left_out].all(), (pattern, q)
            assert len(left_out) > 0
    assert chosen >= (3 if vocab_name == "llama3" else 1)


IDENTIFIER_GRAMMARS = {
    # a name is followed by punctuation: the left-out boundaries are never needed
    "call": r"""
start: NAME "(" [arg (", " arg)*] ")"
arg: NAME "=" (NAME | NUMBER)
NAME: /[a-z_][a-z0-9_]{0,20}/
NUMBER: /[0-9]{1,6}/
""",
    # a name may be followed by a name (no separator): the walk without the slice is taken
    "adjacent": r"""
start: (NAME | WORD)+ "."
NAME: /[a-z_][a-z0-9_]{0,12}/
WORD: /[a-z]{1,8}/
""",
    "ambiguous": r"""
start: decl+ ";"
decl: "let" NAME | NAME
NAME: /[a-z]{1,15}/
%ignore " "
""",
}


@pytest.mark.parametrize("name", sorted(IDENTIFIER_GRAMMARS))
def test_lark_masks_with_and_without_accepting_class_slices_are_equal(llama3_tokenizer, llama3_vocab, name):
    """Masks of Lark grammars with identifiers, from empty per-vocabulary walk caches, with class
    slices (identifier walks leave boundaries out) and without; and a sample of tokens stepped
    through the parser agrees with each mask."""
    import corral
    from corral.grammars.lark_frontend import lark_to_grammar
    from corral.grammars.sampling import sample_grammar
    from corral.masks.matcher import CompiledGrammar

    text = IDENTIFIER_GRAMMARS[name]
    ir = lark_to_grammar(text)
    rnd = random.Random(13)
    sentences = [sample_grammar(ir, rnd, max_depth=6) for _ in range(5)]
    base = corral.compile_lark(text, llama3_vocab)
    runs = {}
    for use in (True, False):
        llama3_vocab.cache.pop("corral.root_walks", None)
        llama3_vocab.cache.pop("corral.sub_walks", None)
        g = CompiledGrammar(base.grammar, llama3_vocab)
        g.use_class_slices = use
        runs[use] = []
        for sentence in sentences:
            m = g.matcher()
            for t in llama3_tokenizer.encode(sentence, add_special_tokens=False):
                runs[use].append((m.fork(), m.next_token_bits().copy()))
                assert m.accept_token(t), sentence
            assert m.is_accepting()
    llama3_vocab.cache.pop("corral.root_walks", None)
    sample = rnd.sample(range(llama3_vocab.size), 120)
    assert len(runs[True]) == len(runs[False])
    for (m, with_slices), (_, without) in zip(runs[True], runs[False]):
        assert np.array_equal(with_slices, without), name
        for t in sample:
            assert m.fork().accept_token(t) == bool((int(with_slices[t >> 5]) >> (t & 31)) & 1), t


@pytest.mark.parametrize("vocab_name", ["mistral", "qwen"])
def test_class_slice_walks_equal_the_plain_walk_on_other_tokenizers(request, vocab_name):
    """The same on SentencePiece (byte fallback, `▁` spaces) and Qwen2.5's 151k byte-level BPE."""
    from corral.masks.slices import class_slices
    from corral.masks.trie_walk import walk_trie_with_dfa_slice

    vocab = request.getfixturevalue(f"{vocab_name}_vocab")
    trie = vocab.trie
    chosen = 0
    for which in (0, 1, 4):
        dfa = regex_to_dfa(parse_regex(CLASS_REGEXES[which]))
        rnd = random.Random(which)
        states = set()
        for _ in range(3):
            q = 0
            for b in sample_regex(parse_regex(CLASS_REGEXES[which]), rnd).encode():
                q = int(dfa.transitions[q, b])
                states.add(q)
        for q in sorted(states):
            plain = np.zeros((vocab.size + 31) // 32, dtype=np.uint32)
            plain_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, plain)
            choice = class_slices(vocab).choose(dfa.transitions, dfa.accepting, q, 2)
            if choice is None:
                continue
            chosen += 1
            sl, lengths = choice
            bits = sl.bits_for([n for n, _ in lengths])
            bounds = walk_trie_with_dfa_slice(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, bits,
                                              sl.skip_len, sl.skip_upto(lengths))
            assert np.array_equal(plain, bits) and np.array_equal(plain_bounds, bounds), (vocab_name, which, q)
    assert chosen > 0


@pytest.mark.parametrize("which", range(len(CLASS_REGEXES)))
def test_packed_root_walk_equals_the_slice_walk(llama3_vocab, which):
    """The matcher's root-walk kernel (byte and depth packed in one word, single tokens without
    their range) against ``walk_trie_with_dfa_slice``, with and without a class slice."""
    from corral.masks.slices import class_slices
    from corral.masks.trie_walk import packed_walk_arrays, walk_trie_packed, walk_trie_with_dfa_slice

    trie = llama3_vocab.trie
    info, tok = packed_walk_arrays(trie)
    dfa = regex_to_dfa(parse_regex(CLASS_REGEXES[which]))
    no_skip, no_upto = np.zeros(0, dtype=np.int32), np.zeros(256, dtype=np.int32)
    for q in random.Random(which).sample(range(dfa.n_states), min(dfa.n_states, 10)):
        runs = [(np.zeros((llama3_vocab.size + 31) // 32, dtype=np.uint32), no_skip, no_upto)]
        choice = class_slices(llama3_vocab).choose(dfa.transitions, dfa.accepting, q, 2)
        if choice is not None:
            sl, lengths = choice
            runs.append((sl.bits_for([n for n, _ in lengths]), sl.skip_len, sl.skip_upto(lengths)))
        for bits, skip, upto in runs:
            want_bits = bits.copy()
            want = walk_trie_with_dfa_slice(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, want_bits, skip, upto)
            got = walk_trie_packed(info, trie.node_skip, tok, trie.node_tok_start, trie.node_tok_end, trie.tok_ids,
                                   dfa.transitions, dfa.accepting, q, 0, bits, skip, upto)
            assert np.array_equal(bits, want_bits) and np.array_equal(got, want[:, 0]), (which, q)


def test_packed_walk_arrays_mark_tokens_sharing_bytes():
    """Several ids with the same bytes (added tokens spelling a merge) take the range path (-2)."""
    from types import SimpleNamespace

    from corral.masks.trie_walk import packed_walk_arrays

    trie = SimpleNamespace(node_byte=np.array([0, 97, 98], dtype=np.uint8), node_depth=np.array([0, 1, 2], dtype=np.int32),
                           node_tok_start=np.array([0, 0, 1], dtype=np.int32),
                           node_tok_end=np.array([0, 1, 3], dtype=np.int32), tok_ids=np.array([5, 6, 7], dtype=np.int32))
    info, tok = packed_walk_arrays(trie)
    assert info.tolist() == [0, 97 | 256, 98 | 512] and tok.tolist() == [-1, 5, -2]


def _char_safe_length_reference(dfa, state, chars, max_len, first_only=-1, first_never=-1, want_accepting=False):
    """Plain-Python oracle of ``slice_safe_length_chars``: strings over ``chars`` enumerated one
    character at a time, each character's bytes fed to the DFA: a string dies (some byte has no
    transition), goes wrong (passes an accepting state inside a character or, at a character's
    end, is accepting where it should not be or not where it should) or stays fine."""
    live = [int(state)]
    for length in range(max_len):
        outcomes, grown = [], []
        for q in live:
            for ch in chars:
                data = ch.encode()
                if length == 0 and ((first_only >= 0 and data[0] != first_only) or data[0] == first_never):
                    continue
                if length > 0 and ch == " ":  # (a slice's space only leads: ` ?C*`)
                    continue
                q2, outcome = q, "fine"
                for i, b in enumerate(data):
                    q2 = int(dfa.transitions[q2, b])
                    if q2 < 0:
                        outcome = "dead"
                        break
                    last = i == len(data) - 1
                    if (last and bool(dfa.accepting[q2]) != want_accepting) or (
                            not last and dfa.accepting[q2] and not want_accepting):
                        outcome = "wrong"
                outcomes.append(outcome)
                if outcome == "fine":
                    grown.append(q2)
        if any(o != "fine" for o in outcomes):
            return length, all(o == "dead" for o in outcomes)
        live = sorted(set(grown))
    return max_len, True


@pytest.mark.parametrize("leading_space", [False, True])
def test_slice_safe_length_in_characters_equals_enumeration(leading_space):
    """(L, exact) in characters, with and without byte classes, against enumerating every string of
    a small class with 1- to 4-byte characters: counted runs of mixed widths, loops, lexemes that
    end inside, and both kinds of a spaced slice."""
    from corral.masks.slices import _ALL_BYTES, _byte_classes, slice_safe_length_chars

    chars = ["a", "b", "\u00e9", "\u65e5", "\U0001F600"] + ([" "] if leading_space else [])
    cls = rx.chars([(ord(c), ord(c)) for c in chars if c != " "])
    c_dfa = regex_to_dfa(rx.seq(rx.repeat(rx.literal(" "), 0, 1), rx.star(cls)) if leading_space else rx.star(cls))
    kinds = ((-1, 0x20), (0x20, -1)) if leading_space else ((-1, -1),)
    patterns = ["[ab\u00e9]{0,4}(\u65e5[ab]{1,3}){0,2}\U0001F600", "[ab\u00e9\u65e5\U0001F600]{2,6}\"",
                "[a\u00e9]*b", "(\u65e5\u00e9)+ ?a", "a{1,3}|\U0001F600{2}", "( ?[ab\u65e5]{1,3})+;",
                "[^\"]{0,5}\"", "[ab]{3}\u00e9?", "[ab\u00e9\u65e5\U0001F600]{2,4}"]
    outcomes = set()
    for pattern in patterns:
        dfa = regex_to_dfa(parse_regex(pattern))
        reps = _byte_classes(dfa.transitions, c_dfa.transitions)
        assert 0x20 in reps.tolist() and len(reps) < 256
        for q in range(dfa.n_states):
            for only, never in kinds:
                for want_accepting in (False, True):
                    want = _char_safe_length_reference(dfa, q, chars, 6, only, never, want_accepting)
                    for byte_reps in (_ALL_BYTES, reps):
                        got = slice_safe_length_chars(dfa.transitions, dfa.accepting, np.int32(q), c_dfa.transitions,
                                                      c_dfa.accepting, np.int32(6), np.int32(only), np.int32(never),
                                                      byte_reps, want_accepting)
                        assert (int(got[0]), bool(got[1])) == want, (pattern, q, only, never, want_accepting)
                    outcomes.add((want[0], want[1]))
    assert any(0 < n < 6 and exact for n, exact in outcomes) and any(0 < n < 6 and not exact for n, exact in outcomes)


def test_byte_classes_group_exactly_the_bytes_with_equal_columns():
    from corral.masks.slices import _byte_classes

    c_dfa = regex_to_dfa(rx.star(rx.negate(rx.chars([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]))))
    for pattern in [r'"[^"\n]{0,30}"', r"[a-z_][a-z0-9_]{0,20}", r"-?[0-9]{1,6}(\.[0-9]{1,3})?", r"\u00e9+x"]:
        dfa = regex_to_dfa(parse_regex(pattern))
        reps = _byte_classes(dfa.transitions, c_dfa.transitions).tolist()
        columns = [tuple(dfa.transitions[:, b].tolist()) + tuple(c_dfa.transitions[:, b].tolist()) for b in range(256)]
        # every class once, plus the space (its class may already have another representative)
        assert sorted(reps) == reps and 0x20 in reps and len(set(reps)) == len(reps)
        assert {columns[b] for b in reps} == set(columns)
        assert len(reps) - (sum(columns[b] == columns[0x20] for b in reps) - 1) == len(set(columns))


def test_string_slice_in_characters_counts_code_points(llama3_vocab):
    """The by-characters string slice holds the same tokens as the by-bytes one, ordered and
    counted by code points: its bits up to n characters are the raw-string tokens of at most n."""
    by_bytes, by_chars = string_slice(llama3_vocab), string_slice(llama3_vocab, by_chars=True)
    assert np.array_equal(by_bytes.bits, by_chars.bits) and np.array_equal(by_bytes.node_full, by_chars.node_full)
    chars_of = {}
    for t in np.flatnonzero(np.unpackbits(by_bytes.bits.view(np.uint8), bitorder="little")[:llama3_vocab.size]):
        chars_of[int(t)] = len(llama3_vocab.token_bytes(int(t)).decode("utf-8"))
    assert by_chars.max_len == max(chars_of.values()) <= by_bytes.max_len
    for n in (1, 2, 3, 5, 8, 13, by_chars.max_len):
        got = np.flatnonzero(np.unpackbits(by_chars.bits_for([n]).view(np.uint8), bitorder="little")[:llama3_vocab.size])
        assert got.tolist() == sorted(t for t, k in chars_of.items() if k <= n)
        assert by_chars.covered([n]) == len(got)
    trie = llama3_vocab.trie
    for node in np.random.default_rng(5).choice(np.flatnonzero(by_chars.node_full), 300, replace=False).tolist():
        below = trie.tok_ids[trie.node_tok_start[node]:trie.node_tok_end[trie.node_skip[node] - 1]]
        assert by_chars.skip_len[node] == max(chars_of[int(t)] for t in below)


@pytest.mark.parametrize("which", range(len(BOUNDED_STRINGS)))
def test_character_slice_inside_bounded_strings_equals_the_full_walk(llama3_vocab, which):
    """Inside a string bounded in code points, along members with multi-byte characters: the
    by-characters slice's (L, exact) per state, its tokens up to L characters and the walk that
    skips the decided subtrees (the residual walk where every one is) mark the same tokens and
    boundary nodes as the plain walk; the bound is exact in characters where bytes were not."""
    from corral.masks.trie_walk import packed_trie_arrays, walk_trie_residual, walk_trie_with_dfa_slice

    sl = string_slice(llama3_vocab, by_chars=True)
    dfa = regex_to_dfa(BOUNDED_STRINGS[which])
    trie = llama3_vocab.trie
    packed = packed_trie_arrays(trie)
    states = [0]
    for k, ch in enumerate('"' + "a\u00e9\u65e5\U0001F600b" * 20):
        q = int(dfa.transitions[states[-1], ch.encode()[0]])
        for b in ch.encode()[1:]:
            q = int(dfa.transitions[q, b]) if q >= 0 else -1
        if q < 0:
            break
        states.append(q)
    exact_inside = 0
    for q in states[1::2]:
        lengths = sl.safe_lengths(dfa.transitions, dfa.accepting, q)
        (n, exact), = lengths
        plain = np.zeros_like(sl.bits)
        plain_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, plain)[:, 0]
        if n < 1:
            continue
        exact_inside += exact and n < sl.max_len
        upto = sl.skip_upto(lengths)
        bits = sl.bits_for([n])
        bounds = walk_trie_with_dfa_slice(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, bits, sl.skip_len, upto)
        assert np.array_equal(plain, bits), (which, q, lengths)
        assert np.array_equal(plain_bounds, bounds[:, 0] if bounds.ndim == 2 else bounds), (which, q)
        if sl.decides_every_subtree(upto):
            bits = sl.bits_for([n])
            bounds = walk_trie_residual(*sl.residual(trie, packed[0], packed[2]), packed[2], trie.node_tok_start,
                                        trie.node_tok_end, trie.tok_ids, dfa.transitions, dfa.accepting, q, bits)
            assert np.array_equal(plain, bits) and np.array_equal(plain_bounds, bounds), (which, q)
    assert exact_inside > 0


def test_character_slice_falls_back_to_a_byte_bound_where_the_frontier_is_wide(llama3_vocab):
    """Past EXACT_FRONTIER pairs a level the character search gives up; the slice then takes the
    byte search's bound over four (every string of that many characters has at most 4x the bytes),
    exact only at the longest token, and the walk still marks exactly the plain walk's tokens and
    boundaries."""
    from corral.masks.slices import EXACT_FRONTIER, slice_safe_length_chars
    from corral.masks.trie_walk import walk_trie_with_dfa_slice

    sl = string_slice(llama3_vocab, by_chars=True)
    # a search for a long word inside a string: after k characters, k+1 places in the word are live
    dfa = regex_to_dfa(st.quoted(rx.seq(rx.star(rx.any_char()), rx.literal("abcdefghijklmnopqrstuvwxyz" * 2),
                                        rx.star(rx.any_char()))))
    q = int(dfa.transitions[0, ord('"')])
    got = slice_safe_length_chars(dfa.transitions, dfa.accepting, np.int32(q), sl.c_transitions, sl.c_accepting,
                                  np.int32(sl.max_len), np.int32(-1), np.int32(-1), sl.byte_representatives(dfa.transitions),
                                  False)
    assert int(got[0]) == -1 and EXACT_FRONTIER < 52  # the case under test
    (n, exact), = sl.safe_lengths(dfa.transitions, dfa.accepting, q)
    assert 0 < n <= sl.max_len and exact == (n == sl.max_len)  # (no string of raw characters ends it)
    trie = llama3_vocab.trie
    plain = np.zeros_like(sl.bits)
    plain_bounds = walk_trie_with_dfa(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, plain)
    bits = sl.bits_for([n])
    bounds = walk_trie_with_dfa_slice(*trie.arrays(), dfa.transitions, dfa.accepting, q, 0, bits, sl.skip_len,
                                      sl.skip_upto([(n, exact)]))
    assert np.array_equal(plain, bits) and np.array_equal(plain_bounds, bounds)


@pytest.mark.parametrize("vocab_name", ["llama3_vocab", "mistral_vocab"])
def test_class_token_bounds_decide_only_below_the_threshold(request, vocab_name):
    """Tokens by first byte (and by the byte after a leading space) equal a count over the tokens'
    own bytes; a class's (plain, spaced) counts are the pruned pass's, or upper bounds of them
    that are already below MIN_CLASS_SLICE_TOKENS (the only comparison they feed)."""
    from corral.masks.slices import MIN_CLASS_SLICE_TOKENS, ClassSlices, _class_token_counts, _leading_byte_token_counts

    vocab = request.getfixturevalue(vocab_name)
    first, after_space = _leading_byte_token_counts(vocab.trie)
    want_first, want_after = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for t in range(vocab.size):
        data = vocab.token_bytes(t)
        if vocab.trie.token_node[t] < 0 or not data:
            continue
        want_first[data[0]] += 1
        if data[0] == 0x20 and len(data) > 1:
            want_after[data[1]] += 1
    assert first.tolist() == want_first.tolist() and after_space.tolist() == want_after.tolist()
    trie = vocab.trie
    slices = ClassSlices(vocab)
    rnd = random.Random(4)
    classes = [b"0123456789", b"0123456789abcdef", b"+-", b"abcdefghijklmnopqrstuvwxyz", b" abcdefghijklmnopqrstuvwxyz"]
    classes += [bytes(rnd.sample(range(0x21, 0x7F), rnd.randint(1, 60))) for _ in range(40)]
    for chars in classes:
        byte_class = np.zeros(256, dtype=np.bool_)
        byte_class[list(chars)] = True
        got = slices._class_tokens(byte_class, np.packbits(byte_class).tobytes())
        exact = _class_token_counts(trie.node_byte, trie.node_depth, trie.node_skip, trie.node_tok_start,
                                    trie.node_tok_end, byte_class)
        if tuple(got) != tuple(exact):
            assert got[0] >= exact[0] and got[1] >= exact[1], chars
            assert got[0] + got[1] < MIN_CLASS_SLICE_TOKENS, chars


def test_text_spelled_length_equals_the_per_character_count():
    """The one-check shortest spelling length of a key or enum value (all raw) equals the
    per-character count on strings with controls, quotes, backslashes, non-printables, astral
    characters and lone surrogates, and a literal automaton records it as its minimum length."""
    import random

    from corral.grammars import regex_ast as rx
    from corral.grammars.json_schema import spelling, strings

    rnd = random.Random(0)
    pool = [chr(c) for c in [*range(0x80), 0x7F, 0x85, 0x9F, 0xA0, 0xAD, 0xE9, 0x2028, 0x4E00, 0xFEFF, 0x1F600,
                             0xD800, 0xDFFF]]
    for _ in range(20000):
        text = "".join(rnd.choice(pool) for _ in range(rnd.randint(0, 8)))
        assert spelling._text_spelled_length(text) == sum(map(spelling._spelled_length, text)), repr(text)
    for text in ["name", 'a"b', "tab\there", "é\u2028x", "😀"]:
        # against the shortest spelling of the regex route (computed from the regex, not recorded)
        assert spelling.literal_automaton(text)._min_length == rx.min_length(strings.literal_string(text))
