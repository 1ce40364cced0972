"""The JSON Schema Test Suite through the MaskBench protocol, per draft and category (file).

Every test group (one schema + its instances) is one "schema" for the engine workers of
bench.maskbench: instances are serialized with ``json.dumps`` (default separators), tokenized with the
run's tokenizer, and checked token by token; a group passes when its schema compiles and every
instance comes out right. Per category and draft we report groups passed, false negatives (valid
instances rejected), false positives (invalid instances accepted), unsupported groups (the engine
declined the schema) and other errors; a category is fully passed when all its groups pass.
"""
from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench import TEST_SUITE_DIR, default_out_dir, load_tokenizer, machine_description
from bench.maskbench import schema_row, start_workers, tokenize_instances
from bench.report import markdown_table

__all__ = ["load_draft", "run_testsuite", "summarize_testsuite", "write_testsuite_report"]

DRAFTS = ("draft2020-12", "draft2019-09", "draft7", "draft6", "draft4")


DIALECT_URIS = {"draft4": "http://json-schema.org/draft-04/schema#", "draft6": "http://json-schema.org/draft-06/schema#",
                "draft7": "http://json-schema.org/draft-07/schema#",
                "draft2019-09": "https://json-schema.org/draft/2019-09/schema",
                "draft2020-12": "https://json-schema.org/draft/2020-12/schema"}


def load_draft(suite_dir: Path, draft: str, optional: bool = False) -> list[tuple[str, list[dict]]]:
    """(category, groups) per test file of a draft; optional/ files are categories "optional/<name>".
    A group schema without ``$schema`` gets its draft's, so every engine validates it by that draft
    (engines default to their own dialect, e.g. 2020-12, where ``$ref`` siblings apply)."""
    root = Path(suite_dir) / "tests" / draft
    files = sorted(root.glob("*.json"))
    if optional:
        files += sorted((root / "optional").rglob("*.json"))
    out = []
    for path in files:
        groups = json.loads(path.read_text(encoding="utf-8"))
        for g in groups:
            if isinstance(g.get("schema"), dict) and "$schema" not in g["schema"]:
                g["schema"] = {"$schema": DIALECT_URIS[draft], **g["schema"]}
        out.append((str(path.relative_to(root).with_suffix("")), groups))
    return out


def add_arguments(parser) -> None:
    from bench.adapters import DEFAULT_ENGINES  # noqa: PLC0415
    parser.add_argument("--drafts", nargs="*", default=["draft2020-12"], help=f"any of {DRAFTS} or 'all'")
    parser.add_argument("--categories", nargs="*", default=None, help="only these files (e.g. enum ref)")
    parser.add_argument("--optional", action="store_true", help="also the optional/ files (formats etc.)")
    parser.add_argument("--engines", nargs="*", default=list(DEFAULT_ENGINES))
    parser.add_argument("--tokenizer", default="llama3")
    parser.add_argument("--suite-dir", type=Path, default=TEST_SUITE_DIR)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--mask-timeout", type=float, default=120.0)
    parser.add_argument("--memory-limit-gb", type=float, default=8.0)
    parser.add_argument("--quiet", action="store_true")


def run_testsuite(args, log=print) -> dict:
    from tqdm import tqdm  # noqa: PLC0415

    drafts = list(DRAFTS) if args.drafts == ["all"] else args.drafts
    out = Path(args.out) if args.out else default_out_dir("testsuite")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    tokenizer = load_tokenizer(args.tokenizer)
    workers = start_workers(args.engines, args.tokenizer, args.memory_limit_gb or None, log)
    config = {"command": "testsuite", "argv": sys.argv, "drafts": drafts, "engines": list(workers),
              "skipped_engines": [e for e in args.engines if e not in workers], "tokenizer": args.tokenizer,
              "machine": machine_description(), "engine_info": {e: w.info for e, w in workers.items()}}
    (out / "config.json").write_text(json.dumps(config, indent=2))  # a stopped run can still be reported
    try:
        with open(out / "groups.jsonl", "w", encoding="utf-8") as rows_file:
            for draft in drafts:
                categories = load_draft(args.suite_dir, draft, args.optional)
                if args.categories:
                    categories = [(c, g) for c, g in categories if c in args.categories]
                tasks = [(c, k, g) for c, groups in categories for k, g in enumerate(groups)]
                for category, index, group in tqdm(tasks, desc=f"testsuite {draft}", unit="group",
                                                   disable=args.quiet, dynamic_ncols=True):
                    instances = tokenize_instances(tokenizer, group["tests"])
                    schema_text = json.dumps(group["schema"])
                    for engine, worker in workers.items():
                        result = worker.run(schema_text, instances, args.timeout, args.mask_timeout)
                        row = schema_row(engine, f"{draft}/{category}", f"{category}#{index}", result, instances)
                        row.update(draft=draft, category=category, group=group["description"])
                        rows_file.write(json.dumps(row) + "\n")
                        rows_file.flush()
    finally:
        for worker in workers.values():
            worker.close()
    config["wall_s"] = time.time() - started
    (out / "config.json").write_text(json.dumps(config, indent=2))
    summary = write_testsuite_report([out], out)
    log(summary["markdown"])
    log(f"[bench] wall time {config['wall_s']:.1f} s; results in {out}")
    return summary


def summarize_testsuite(rows) -> dict:
    """{draft: {engine: totals}}, and per (draft, category) per engine counts."""
    per_category = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in rows:
        c = per_category[(r["draft"], r["category"])][r["engine"]]
        c["groups"] += 1
        c["passed"] += int(r["passed"])
        c["false_negatives"] += r["false_negatives"]
        c["false_positives"] += r["false_positives"]
        c["unsupported"] += int(r["status"] in ("unsupported", "compile_error"))
        c["errors"] += int(r["status"] in ("timeout", "crash", "runtime_error"))
    per_draft = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for (draft, _), engines in per_category.items():
        for engine, c in engines.items():
            d = per_draft[draft][engine]
            d["categories"] += 1
            d["categories_fully_passed"] += int(c["passed"] == c["groups"])
            for key, value in c.items():
                d[key] += value
    return {"per_draft": {d: {e: dict(v) for e, v in engines.items()} for d, engines in per_draft.items()},
            "per_category": {f"{d}/{c}": {e: dict(v) for e, v in engines.items()}
                             for (d, c), engines in sorted(per_category.items())}}


def testsuite_markdown(summary) -> str:
    parts = []
    rows = []
    for draft, engines in summary["per_draft"].items():
        for engine, t in engines.items():
            rows.append([draft, engine, f"{t['categories_fully_passed']}/{t['categories']}",
                         f"{t['passed']}/{t['groups']}", t["false_negatives"], t["false_positives"],
                         t["unsupported"], t["errors"]])
    parts.append("**JSON Schema Test Suite totals** (FN = valid instances rejected, FP = invalid accepted; "
                 "unsupported = groups whose schema the engine declined)\n\n" +
                 markdown_table(["draft", "engine", "categories fully passed", "groups passed", "FN", "FP",
                                 "unsupported", "errors"], rows))
    engines = sorted({e for per in summary["per_category"].values() for e in per})
    rows = []
    for category, per in summary["per_category"].items():
        rows.append([category] + [
            "–" if e not in per else
            f"{per[e]['passed']}/{per[e]['groups']} ({per[e]['false_negatives']}/{per[e]['false_positives']}/"
            f"{per[e]['unsupported']})" for e in engines])
    parts.append("**Per category**: groups passed/groups (FN/FP/unsupported)\n\n" +
                 markdown_table(["category", *engines], rows))
    return "\n\n".join(parts) + "\n"


def write_testsuite_report(dirs, out: Path) -> dict:
    rows = []
    for directory in map(Path, dirs):
        for line in (directory / "groups.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                rows.append(json.loads(line))
    summary = summarize_testsuite(rows)
    summary["markdown"] = testsuite_markdown(summary)
    (Path(out) / "summary.md").write_text(summary["markdown"])
    (Path(out) / "results.json").write_text(json.dumps(summary, indent=2))
    return summary
