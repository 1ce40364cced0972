"""Engine benchmark: compile time and per-token mask time on regexes and Lark grammars, corral vs
xgrammar vs llguidance, measured in the same run with the Llama-3 tokenizer.

    python -m bench.engine [--docs 20] [--seed 0] [--engines corral,xgrammar,llguidance] [--out bench/results]

Writes engine_table.md (committed), engine_summary.json and engine_mask_time_cdf.png to --out.

Texts are random members of each grammar's language (corral.grammars.sampling), serialized and
tokenized canonically; each engine computes the mask before every token, the token must be allowed,
and the text must end accepting (else the row is flagged). Per-vocabulary preprocessing is timed apart.
Lark grammars reach xgrammar through an IR -> EBNF export (xgrammar has no Lark front-end).
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from corral.grammars import regex_ast as rx
from corral.grammars.ir import Grammar
from corral.grammars.lark_frontend import lark_to_grammar
from corral.grammars.regex_parser import parse_regex
from corral.grammars.sampling import sample_grammar, sample_regex

REGEXES = {
    "integer": r"-?(0|[1-9][0-9]{0,17})",
    "decimal": r"-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?([eE][+-]?[0-9]{1,3})?",
    "email": r"[a-z0-9._%+-]{1,20}@[a-z0-9-]{1,15}(\.[a-z]{2,6}){1,2}",
    "date_time": r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "ipv4": r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    "json_string": r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4}){0,40}"',
    "sentence": r"[A-Z][a-z]{1,10}( [a-z]{1,10}){2,12}[.!?]",
    "keywords": r"(apple|banana|cherry|durian|elderberry|fig|grape|honeydew)(, (apple|banana|cherry|durian|elderberry|fig|grape|honeydew)){0,5}",
    "phone": r"\+?1? ?\(?[0-9]{3}\)?[ -]?[0-9]{3}-[0-9]{4}",
}

LARK = {
    "json": r"""
?start: value
?value: object | array | STRING | NUMBER | "true" | "false" | "null"
array: "[" [value ("," value)*] "]"
object: "{" [pair ("," pair)*] "}"
pair: STRING ":" value
STRING: /"([^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/
NUMBER: /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/
%ignore /[ \t\n]+/
""",
    "arithmetic": r"""
start: expr
expr: expr "+" term | expr "-" term | term
term: term "*" factor | term "/" factor | factor
factor: NUMBER | "(" expr ")" | "-" factor
NUMBER: /[0-9]+(\.[0-9]+)?/
%ignore " "
""",
    "sql_select": r"""
start: "SELECT " columns " FROM " NAME where? order? ";"
columns: "*" | column (", " column)*
column: NAME ("." NAME)?
where: " WHERE " cond ((" AND " | " OR ") cond)*
cond: column " " OP " " (NUMBER | STRING | column)
order: " ORDER BY " column (" ASC" | " DESC")?
OP: "=" | "<" | ">" | "<=" | ">=" | "!="
STRING: /'[^']*'/
NAME: /[a-z_][a-z0-9_]*/
NUMBER: /[0-9]+/
""",
    "function_call": r"""
start: NAME "(" [arg (", " arg)*] ")"
arg: NAME "=" value
value: STRING | NUMBER | "true" | "false" | "[" [value (", " value)*] "]"
NAME: /[a-z_][a-z0-9_]{0,20}/
STRING: /"[^"\n]{0,30}"/
NUMBER: /-?[0-9]{1,6}(\.[0-9]{1,3})?/
""",
}


# ---------------------------------------------------------------------------------------------
# IR -> xgrammar EBNF (bench-only: lets xgrammar run the same grammars)
def _ebnf_char(cp: int) -> str:
    if chr(cp) in "\\]^-[\"":
        return "\\" + chr(cp)
    if 0x20 <= cp < 0x7F:
        return chr(cp)
    return "\\u%04x" % cp if cp < 0x10000 else "\\U%08x" % cp


def _regex_to_ebnf(node: rx.Regex) -> str:
    if isinstance(node, rx.Chars):
        return "[" + "".join(_ebnf_char(lo) if lo == hi else f"{_ebnf_char(lo)}-{_ebnf_char(hi)}"
                             for lo, hi in node.ranges) + "]"
    if isinstance(node, rx.Seq):
        return "(" + " ".join(_regex_to_ebnf(i) for i in node.items) + ")" if node.items else '""'
    if isinstance(node, rx.Alt):
        return "(" + " | ".join(_regex_to_ebnf(i) for i in node.items) + ")"
    if isinstance(node, rx.Repeat):
        inner = _regex_to_ebnf(node.item)
        if node.max is None:
            return f"({inner}{{{node.min},}})" if node.min > 1 else f"({inner}{'*' if node.min == 0 else '+'})"
        return f"({inner}{{{node.min},{node.max}}})"
    raise TypeError(node)


def grammar_to_ebnf(g: Grammar) -> str:
    names = {n: "r_" + "".join(c if c.isalnum() else "_" for c in n) + f"_{i}" for i, n in enumerate(g.rules)}
    tnames = {t: "t_" + "".join(c if c.isalnum() else "_" for c in t) + f"_{i}" for i, t in enumerate(g.terminals)}
    ign = " | ".join(tnames[t] for t in g.ignore)
    lines = [f"root ::= {names[g.start]}" + (" ign" if ign else "")]
    if ign:
        lines.append(f"ign ::= ({ign})*")
    for t, node in g.terminals.items():
        lines.append(f"{tnames[t]} ::= {_regex_to_ebnf(node)}")

    def sym(s):
        if s in g.terminals:
            return ("ign " if ign and s not in g.ignore else "") + tnames[s]
        return names[s]

    for n, alts in g.rules.items():
        body = " | ".join(" ".join(sym(s) for s in a) if a else '""' for a in alts)
        lines.append(f"{names[n]} ::= {body}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
class CorralEngine:
    name = "corral"

    def setup(self, tok):
        import corral

        self.corral = corral
        t0 = time.perf_counter()
        self.vocab = corral.Vocabulary.from_hf(tok)
        self.vocab.trie
        # load the numba kernels from their cache on throwaway grammars so that compile and mask
        # times exclude it (the general DFA construction's functions and the push-chain walk too)
        from corral.masks.matcher import warm_up_mask_kernels

        warm_up_mask_kernels(self.vocab)
        return time.perf_counter() - t0

    def compile(self, kind, text):
        if kind == "regex":
            return self.corral.compile_regex(text, self.vocab)
        return self.corral.compile_lark(text, self.vocab)

    def run(self, compiled, ids):
        m = compiled.matcher()
        times = []
        for t in ids:
            t0 = time.perf_counter()
            bits = m.next_token_bits()
            times.append(time.perf_counter() - t0)
            if not (int(bits[t >> 5]) >> (t & 31)) & 1 or not m.accept_token(t):
                return times, False
        return times, m.is_accepting()


class XGrammarEngine:
    name = "xgrammar"

    def setup(self, tok):
        import torch
        import xgrammar as xgr

        self.xgr, self.torch = xgr, torch
        t0 = time.perf_counter()
        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
        return time.perf_counter() - t0

    def compile(self, kind, text):
        if kind == "regex":
            return self.compiler.compile_regex(text)
        return self.compiler.compile_grammar(grammar_to_ebnf(lark_to_grammar(text)))

    def run(self, compiled, ids):
        m = self.xgr.GrammarMatcher(compiled)
        words = self.bitmask[0].numpy()
        times = []
        for t in ids:
            t0 = time.perf_counter()
            m.fill_next_token_bitmask(self.bitmask, 0)
            times.append(time.perf_counter() - t0)
            if not (int(words[t >> 5]) >> (t & 31)) & 1 or not m.accept_token(t):
                return times, False
        return times, bool(m.is_completed())


class LLGuidanceEngine:
    name = "llguidance"

    def setup(self, tok):
        import llguidance
        import llguidance.hf

        self.llg = llguidance
        t0 = time.perf_counter()
        self.lltok = llguidance.hf.from_tokenizer(tok, n_vocab=len(tok))
        self.words = np.zeros((len(tok) + 31) // 32, dtype=np.int32)
        return time.perf_counter() - t0

    def compile(self, kind, text):
        grammar = self.llg.grammar_from("regex" if kind == "regex" else "lark", text)
        m = self.llg.LLMatcher(self.lltok, grammar, log_level=0)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return m

    def run(self, compiled, ids):
        m = compiled.deep_copy()
        times = []
        for t in ids:
            t0 = time.perf_counter()
            self.words.fill(0)
            m.unsafe_compute_mask_ptr(self.words.ctypes.data, self.words.nbytes)
            times.append(time.perf_counter() - t0)
            if not (int(self.words[t >> 5]) >> (t & 31)) & 1 or not m.consume_token(t):
                return times, False
        return times, m.is_accepting()


ENGINES = {"corral": CorralEngine, "xgrammar": XGrammarEngine, "llguidance": LLGuidanceEngine}


def _texts(kind, source, n, rnd):
    g = lark_to_grammar(source) if kind == "lark" else None
    node = parse_regex(source) if kind == "regex" else None
    out = []
    for _ in range(n):
        out.append(sample_grammar(g, rnd, max_depth=8) if g is not None else sample_regex(node, rnd))
    return out


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q)) if len(xs) else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20, help="sampled texts per grammar")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default="corral,xgrammar,llguidance")
    ap.add_argument("--out", default="bench/results")
    args = ap.parse_args(argv)

    from corral.masks.tokenizers_offline import load_offline_tokenizer

    tok = load_offline_tokenizer("llama3")
    rnd = random.Random(args.seed)
    work = [("regex", k, v) for k, v in REGEXES.items()] + [("lark", k, v) for k, v in LARK.items()]
    texts = {name: _texts(kind, src, args.docs, rnd) for kind, name, src in work}
    token_ids = {name: [tok.encode(t, add_special_tokens=False) for t in ts] for name, ts in texts.items()}

    results = {}
    for ename in args.engines.split(","):
        try:
            eng = ENGINES[ename]()
            setup_s = eng.setup(tok)
        except ImportError as e:
            print(f"skipping {ename}: {e}")
            continue
        # as serving stacks do after loading (and as `python -m bench maskbench`'s workers do):
        # objects alive after setup (torch, transformers, the tokenizer) leave the cyclic GC's
        # generations, so a full collection no longer walks them inside some engine's mask
        gc.collect()
        gc.freeze()
        rows = {}
        for kind, name, src in tqdm(work, desc=ename):
            try:
                t0 = time.perf_counter()
                compiled = eng.compile(kind, src)
                compile_s = time.perf_counter() - t0
            except Exception as e:  # a peer that cannot take the grammar
                rows[name] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                continue
            mask_times, failures = [], 0
            for ids in token_ids[name]:
                ts, ok = eng.run(compiled, ids)
                mask_times.extend(ts)
                failures += not ok
            rows[name] = {"compile_ms": compile_s * 1e3, "mask_us": [t * 1e6 for t in mask_times],
                          "rejected_docs": failures}
        results[ename] = {"setup_s": setup_s, "grammars": rows}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    lines = ["| engine | setup s | compile ms p50 | compile ms max | mask µs p50 | p99 | p99.9 | max | mean | docs rejected | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for ename, res in results.items():
        rows = res["grammars"]
        comp = [r["compile_ms"] for r in rows.values() if "compile_ms" in r]
        masks = [x for r in rows.values() for x in r.get("mask_us", [])]
        rej = sum(r.get("rejected_docs", 0) for r in rows.values())
        errs = [k for k, r in rows.items() if "error" in r]
        summary[ename] = {"setup_s": res["setup_s"], "compile_ms_p50": statistics.median(comp) if comp else None,
                          "mask_us_p50": pct(masks, 50), "mask_us_p99": pct(masks, 99), "mask_us_p999": pct(masks, 99.9),
                          "mask_us_max": max(masks) if masks else None, "rejected_docs": rej, "errors": errs,
                          "per_grammar": {k: {kk: vv for kk, vv in r.items() if kk != "mask_us"} |
                                          ({"mask_us_p50": pct(r["mask_us"], 50), "mask_us_p99": pct(r["mask_us"], 99)}
                                           if "mask_us" in r else {}) for k, r in rows.items()}}
        lines.append(f"| {ename} | {res['setup_s']:.2f} | {statistics.median(comp):.2f} | {max(comp):.2f} | "
                     f"{pct(masks, 50):.1f} | {pct(masks, 99):.1f} | {pct(masks, 99.9):.1f} | {max(masks):.1f} | "
                     f"{np.mean(masks):.1f} | {rej} | {', '.join(errs) or '-'} |")
    table = "\n".join(lines)
    print(table)
    (out / "engine_summary.json").write_text(json.dumps(summary, indent=1))
    (out / "engine_table.md").write_text(table + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for ename, res in results.items():
            xs = np.sort([x for r in res["grammars"].values() for x in r.get("mask_us", [])])
            if len(xs):
                ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), label=ename)
        ax.set_xscale("log")
        ax.set_xlabel("mask time per token (µs)")
        ax.set_ylabel("CDF")
        ax.set_title("Per-token mask time, regexes + Lark grammars, Llama-3 tokenizer")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "engine_mask_time_cdf.png", dpi=110)
    except ImportError:
        pass
    return summary


if __name__ == "__main__":
    main()
