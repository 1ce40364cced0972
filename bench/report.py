"""Tables and plots from result directories (MaskBench, Test Suite, generate).

``python -m bench report DIR [DIR ...]`` rebuilds summary.md, results.json and the PNG plots from one or
more result directories (later directories win for an engine present in several, so a corral-only run
can be merged with an earlier peers run). The commands call the same functions at the end of a run.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["percentiles", "read_maskbench_dirs", "summarize_maskbench", "maskbench_markdown",
           "write_maskbench_report", "markdown_table"]


def percentiles(values, qs=(50, 90, 99)) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {f"p{q:g}": None for q in qs} | {"max": None, "mean": None, "n": 0}
    result = {f"p{q:g}": float(np.percentile(values, q)) for q in qs}
    result.update(max=float(values.max()), mean=float(values.mean()), n=int(values.size))
    return result


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(value):
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- MaskBench
def read_maskbench_dirs(dirs, common_only: bool = False) -> tuple[list[dict], dict[str, np.ndarray], dict]:
    """Rows, TBM samples (µs) per engine and configs. An engine found in several dirs takes the rows
    of all of them (shards, a stopped run and its resumption with ``--skip-per-split``); a schema
    found twice keeps the later dir's row.

    The TBM file of an engine holds its rows' samples in row order (``n_masks`` each), so rows can be
    filtered with their samples: ``common_only`` keeps the schemas every engine has a row for (to compare
    a partial run with complete ones); rows whose samples are missing (a killed run) are dropped.
    """
    owners: dict[str, list[Path]] = {}
    configs = {}
    for directory in map(Path, dirs):
        config = json.loads((directory / "config.json").read_text())
        configs[str(directory)] = config
        for engine in config["engines"]:
            owners.setdefault(engine, []).append(directory)
    per_engine: dict[str, list[tuple[dict, np.ndarray]]] = {}
    for engine, directories in owners.items():
        by_schema: dict[tuple, tuple[dict, np.ndarray]] = {}
        for directory in directories:
            for row, samples in _engine_rows(directory, engine):
                by_schema.pop((row["split"], row["id"]), None)  # seen in an earlier dir: the later row wins
                by_schema[(row["split"], row["id"])] = (row, samples)
        per_engine[engine] = list(by_schema.values())
    if common_only and per_engine:
        keys = None
        for entries in per_engine.values():
            engine_keys = {(r["split"], r["id"]) for r, _ in entries}
            keys = engine_keys if keys is None else keys & engine_keys
        per_engine = {e: [(r, t) for r, t in entries if (r["split"], r["id"]) in keys]
                      for e, entries in per_engine.items()}
    rows = [r for entries in per_engine.values() for r, _ in entries]
    tbm = {e: (np.concatenate([t for _, t in entries]) if entries else np.zeros(0, np.float32))
           for e, entries in per_engine.items()}
    return rows, tbm, configs


def _engine_rows(directory: Path, engine: str) -> list[tuple[dict, np.ndarray]]:
    """(row, its TBM samples) of one engine in one results dir, in row order."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in engine)
    path = directory / f"tbm-{safe}.f32"
    samples = np.fromfile(path, dtype=np.float32) if path.exists() else np.zeros(0, np.float32)
    entries, offset = [], 0
    rows_path = directory / "schemas.jsonl"
    lines = rows_path.read_text(encoding="utf-8").split("\n") if rows_path.exists() else []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if row["engine"] != engine:
            continue
        end = offset + row["n_masks"]
        if end > samples.size:  # the run was killed before these samples reached the disk
            break
        entries.append((row, samples[offset:end]))
        offset = end
    return entries


def summarize_maskbench(rows, tbm, configs) -> dict:
    by_engine: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_engine[row["engine"]].append(row)
    engines = list(by_engine)
    setup = {}
    for config in configs.values():
        for engine, info in config.get("engine_info", {}).items():
            setup[engine] = info.get("setup_s")
    totals, splits = {}, defaultdict(dict)
    for engine, engine_rows in by_engine.items():
        ttfm_ms = [r["ttfm_s"] * 1e3 for r in engine_rows if r.get("ttfm_s") is not None]
        compile_ms = [r["compile_s"] * 1e3 for r in engine_rows if r.get("compile_s") is not None
                      and r["status"] == "ok"]
        samples = tbm.get(engine, np.zeros(0))
        tbm_stats = percentiles(samples, (50, 99, 99.9))
        kinds = defaultdict(int)
        for r in engine_rows:
            if r["status"] != "ok":
                kinds[r["status"]] += 1
        totals[engine] = {
            "schemas": len(engine_rows), "passed": sum(r["passed"] for r in engine_rows),
            "compiled": sum(r["status"] == "ok" for r in engine_rows),
            "errors": dict(kinds),
            "schemas_with_false_negatives": sum(r["false_negatives"] > 0 for r in engine_rows),
            "false_negative_instances": sum(r["false_negatives"] for r in engine_rows),
            "false_positive_instances": sum(r["false_positives"] for r in engine_rows),
            "valid_instances": sum(r["n_valid"] for r in engine_rows),
            "invalid_instances": sum(r["n_invalid"] for r in engine_rows),
            "mismatches": sum(r.get("mismatches", 0) for r in engine_rows),
            "ttfm_ms": percentiles(ttfm_ms, (50, 90, 99)), "compile_ms": percentiles(compile_ms, (50, 90, 99)),
            "tbm_us": tbm_stats, "setup_s": setup.get(engine),
        }
        for split in sorted({r["split"] for r in engine_rows}):
            split_rows = [r for r in engine_rows if r["split"] == split]
            splits[split][engine] = {
                "schemas": len(split_rows), "passed": sum(r["passed"] for r in split_rows),
                "false_negative_instances": sum(r["false_negatives"] for r in split_rows),
                "false_positive_instances": sum(r["false_positives"] for r in split_rows),
                "errors": sum(r["status"] != "ok" for r in split_rows),
                "ttfm_p50_ms": percentiles([r["ttfm_s"] * 1e3 for r in split_rows
                                            if r.get("ttfm_s") is not None], (50,))["p50"],
            }
    return {"engines": engines, "totals": totals, "splits": dict(splits)}


def maskbench_markdown(summary: dict, configs: dict) -> str:
    engines = summary["engines"]
    totals = summary["totals"]
    parts = []
    rows = []
    for e in engines:
        t = totals[e]
        pct = 100.0 * t["passed"] / t["schemas"] if t["schemas"] else 0.0
        rows.append([e, t["schemas"], t["passed"], f"{pct:.1f}%", t["compiled"],
                     t["false_negative_instances"], t["false_positive_instances"],
                     t["errors"].get("unsupported", 0) + t["errors"].get("compile_error", 0),
                     t["errors"].get("timeout", 0), t["errors"].get("crash", 0),
                     t["errors"].get("runtime_error", 0), t["setup_s"]])
    parts.append("**Totals per engine** (FN = valid instances rejected, FP = invalid instances accepted)\n\n" +
                 markdown_table(["engine", "schemas", "passed", "pass %", "compiled", "FN inst", "FP inst",
                                 "unsupported", "timeout", "crash", "runtime err", "tokenizer setup s"], rows))
    rows = []
    for e in engines:
        c, tb = totals[e]["ttfm_ms"], totals[e]["tbm_us"]
        rows.append([e, c["p50"], c["p90"], c["p99"], c["max"], totals[e]["compile_ms"]["p50"],
                     tb["n"], tb["mean"], tb["p50"], tb["p99"], tb["p99.9"], tb["max"]])
    parts.append("**Timing** (TTFM = compile + first mask, ms, over compiled schemas; "
                 "TBM = accept + next mask, µs, over all tokens)\n\n" +
                 markdown_table(["engine", "TTFM p50", "TTFM p90", "TTFM p99", "TTFM max", "compile p50",
                                 "masks", "TBM mean", "TBM p50", "TBM p99", "TBM p99.9", "TBM max"], rows))
    rows = []
    for split, per_engine in sorted(summary["splits"].items()):
        row = [split]
        for e in engines:
            s = per_engine.get(e)
            row.append("–" if s is None else
                       f"{s['passed']}/{s['schemas']} ({s['false_negative_instances']}/"
                       f"{s['false_positive_instances']}/{s['errors']})")
        rows.append(row)
    parts.append("**Per split**: passed/schemas (FN instances / FP instances / schemas with errors)\n\n" +
                 markdown_table(["split", *engines], rows))
    machines = {json.dumps(c.get("machine", {}).get("cpu")) for c in configs.values()}
    walls = ", ".join(f"{Path(d).name}: " + (f"{c['wall_s']:.0f} s" if c.get("wall_s") else "unfinished (stopped)")
                      for d, c in configs.items())
    parts.append(f"Machine: {', '.join(json.loads(m) or '?' for m in machines)}; "
                 f"{next(iter(configs.values())).get('machine', {}).get('cores')} cores. Wall time: {walls}.")
    return "\n\n".join(parts) + "\n"


def _cdf_plot(ax, samples_by_engine: dict, xlabel: str, title: str) -> None:
    for engine, values in samples_by_engine.items():
        values = np.sort(np.asarray(values, dtype=np.float64))
        values = values[values > 0]
        if values.size == 0:
            continue
        # Thin the body to ~4000 points but keep the whole tail (the slow masks matter most).
        n = values.size
        index = np.unique(np.concatenate([np.linspace(0, n - 1, min(n, 4000)).astype(np.int64),
                                          np.arange(max(0, n - 2000), n)]))
        ax.plot(values[index], (index + 1) / n, label=f"{engine} (n={n:,})")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction ≤ x")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def write_maskbench_plots(summary, rows, tbm, out: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _cdf_plot(ax, tbm, "time between masks (µs, log)", "MaskBench: TBM CDF per engine")
    paths.append(out / "tbm_cdf.png")
    fig.tight_layout(); fig.savefig(paths[-1], dpi=120); plt.close(fig)

    ttfm = defaultdict(list)
    for r in rows:
        if r.get("ttfm_s") is not None:
            ttfm[r["engine"]].append(r["ttfm_s"] * 1e3)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _cdf_plot(ax, ttfm, "time to first mask (ms, log)", "MaskBench: TTFM CDF per engine (compiled schemas)")
    paths.append(out / "ttfm_cdf.png")
    fig.tight_layout(); fig.savefig(paths[-1], dpi=120); plt.close(fig)

    splits = sorted(summary["splits"])
    engines = summary["engines"]
    fig, ax = plt.subplots(figsize=(max(7, 0.55 * len(splits) * max(1, len(engines)) / 2), 4.8))
    width = 0.8 / max(1, len(engines))
    for k, engine in enumerate(engines):
        rates = []
        for split in splits:
            s = summary["splits"][split].get(engine)
            rates.append(100.0 * s["passed"] / s["schemas"] if s and s["schemas"] else 0.0)
        ax.bar(np.arange(len(splits)) + k * width - 0.4 + width / 2, rates, width, label=engine)
    ax.set_xticks(np.arange(len(splits)))
    ax.set_xticklabels(splits, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("schemas passed (%)")
    ax.set_ylim(0, 100)
    ax.set_title("MaskBench: pass rate per split")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    paths.append(out / "pass_rate_per_split.png")
    fig.tight_layout(); fig.savefig(paths[-1], dpi=120); plt.close(fig)
    return paths


def write_maskbench_report(dirs, out: Path, plots: bool = True, common_only: bool = False) -> dict:
    rows, tbm, configs = read_maskbench_dirs(dirs, common_only)
    summary = summarize_maskbench(rows, tbm, configs)
    summary["markdown"] = maskbench_markdown(summary, configs)
    if common_only:
        summary["markdown"] = (f"(restricted to the {len({(r['split'], r['id']) for r in rows})} schemas every "
                               f"engine has a result for)\n\n") + summary["markdown"]
    summary["sources"] = {d: {k: c.get(k) for k in ("argv", "wall_s", "machine", "engine_info", "timeout_s")}
                          for d, c in configs.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(summary["markdown"])
    if plots:
        summary["plots"] = [str(p) for p in write_maskbench_plots(summary, rows, tbm, out)]
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


def report_command(args, log=print) -> None:
    """``python -m bench report DIR...``: rebuild tables/plots for maskbench, testsuite or generate dirs."""
    dirs = [Path(d) for d in args.dirs]
    command = json.loads((dirs[0] / "config.json").read_text())["command"]
    out = Path(args.out) if args.out else dirs[-1]
    if command == "maskbench":
        summary = write_maskbench_report(dirs, out, plots=not args.no_plots, common_only=args.common_only)
    elif command == "testsuite":
        from bench.testsuite import write_testsuite_report  # noqa: PLC0415
        summary = write_testsuite_report(dirs, out)
    else:
        from bench.generate import write_generate_report  # noqa: PLC0415
        summary = write_generate_report(dirs, out, plots=not args.no_plots)
    log(summary["markdown"])
