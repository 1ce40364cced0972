"""Random members of a grammar's language (test data for benchmarks and property tests)."""
from __future__ import annotations

import random

from corral.grammars import regex_ast as rx
from corral.grammars.ir import Grammar


def sample_regex(node: rx.Regex, rnd: random.Random, max_repeat: int = 4) -> str:
    if isinstance(node, rx.Chars):
        lo, hi = rnd.choice(node.ranges)
        if rnd.random() < 0.7:  # favour small code points so text tokenizes realistically
            hi = min(hi, max(lo, 0x7F))
        return chr(rnd.randint(lo, hi))
    if isinstance(node, rx.Seq):
        return "".join(sample_regex(i, rnd, max_repeat) for i in node.items)
    if isinstance(node, rx.Alt):
        viable = [i for i in node.items if rx.min_length(i) < (1 << 30)]
        return sample_regex(rnd.choice(viable), rnd, max_repeat)
    if isinstance(node, rx.Repeat):
        hi = node.min + max_repeat if node.max is None else min(node.max, node.min + max_repeat)
        return "".join(sample_regex(node.item, rnd, max_repeat) for _ in range(rnd.randint(node.min, hi)))
    if isinstance(node, rx.Automaton):
        return _sample_automaton(node, rnd, max_repeat)
    raise TypeError(node)


def _sample_automaton(node: rx.Automaton, rnd: random.Random, max_repeat: int) -> str:
    """A random walk over live states; past a step budget, only steps that get closer to acceptance."""
    live = node.live_states()
    # distance to the nearest accepting state, by backward breadth-first search
    preds: dict[int, list[int]] = {}
    for s, row in enumerate(node.trans):
        for t in row:
            if t >= 0:
                preds.setdefault(t, []).append(s)
    dist = {s: 0 for s, a in enumerate(node.accepting) if a}
    frontier = list(dist)
    while frontier:
        nxt = []
        for t in frontier:
            for p in preds.get(t, ()):
                if p not in dist:
                    dist[p] = dist[t] + 1
                    nxt.append(p)
        frontier = nxt
    if not live[0]:
        raise ValueError("the automaton's language is empty")
    out, s, budget = [], 0, 8 * max_repeat
    while True:
        edges = node.edges(s)
        if node.accepting[s] and (not edges or rnd.random() < 0.25 or len(out) >= budget):
            return "".join(out)
        if len(out) >= budget:
            edges = {t: rs for t, rs in edges.items() if dist[t] < dist[s]}
        t = rnd.choice(sorted(edges))
        out.append(sample_regex(rx.Chars(edges[t]), rnd))
        s = t


def sample_grammar(g: Grammar, rnd: random.Random, max_depth: int = 12) -> str:
    """A random sentence: random alternatives, shortest-derivation ones past ``max_depth``."""
    g = g.expanded()
    inf = 1 << 30
    height = {n: inf for n in g.rules}
    changed = True
    while changed:
        changed = False
        for n, alts in g.rules.items():
            for alt in alts:
                h = 1 + max((0 if s in g.terminals else height[s] for s in alt), default=0)
                if h < height[n]:
                    height[n] = h
                    changed = True

    def ok(alt):
        return all(s in g.terminals or height[s] < inf for s in alt)

    def gen(sym: str, depth: int) -> str:
        if sym in g.terminals:
            text = sample_regex(g.terminals[sym], rnd)
            if g.ignore and rnd.random() < 0.3:
                text = sample_regex(g.terminals[rnd.choice(g.ignore)], rnd) + text
            return text
        alts = [a for a in g.rules[sym] if ok(a)]
        if depth > max_depth:
            best = min(1 + max((0 if s in g.terminals else height[s] for s in a), default=0) for a in alts)
            alts = [a for a in alts if 1 + max((0 if s in g.terminals else height[s] for s in a), default=0) == best]
        alt = rnd.choice(alts)
        return "".join(gen(s, depth + 1) for s in alt)

    return gen(g.start, 0)
