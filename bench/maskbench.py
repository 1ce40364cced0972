"""MaskBench: the token-by-token mask check of an engine on JSON schemas and instances, in child processes.

Protocol (../shared/data/README.md): each instance is serialized with ``json.dumps`` (default
separators), tokenized without special tokens; for every token the engine computes the mask, the token
must be allowed, then it is accepted. A valid instance must pass every token and end where a stop token
is allowed; an invalid one must be stopped somewhere. A schema passes when it compiles and all its
instances come out right.

Timing (per engine, per schema):
  compile_s  the engine's compile call alone;
  ttfm_s     time to first mask = compile + the first matcher's first mask;
  TBM        time between masks: accept(previous token) + fill(next mask), one sample per token
             (the first mask of the 2nd, 3rd... instance is a sample too; the mask after the last token,
             which decides whether a stop token is allowed, is one as well).

This module owns the per-schema runner (``run_schema``), the worker processes that isolate every engine
(``EngineWorker``: a crash, OOM or hang is recorded for that schema, the worker is restarted and the
run goes on), and the ``maskbench`` command.
"""
from __future__ import annotations

import gc
import json
import multiprocessing
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from bench import MASKBENCH_DIR, default_out_dir, load_tokenizer, machine_description, stop_token_ids

__all__ = ["EngineWorker", "load_split", "run_maskbench", "run_schema", "schema_row", "list_splits"]

ERROR_KINDS = ("unsupported", "compile_error", "timeout", "crash", "runtime_error")
_MAX_ERROR_CHARS = 400


# ------------------------------------------------------------------------------------- the runner
def run_schema(adapter, schema_text: str, instances, on_compiled=None) -> dict:
    """Compile ``schema_text`` and check every ``(valid, token_ids)`` instance; runs inside a worker.

    Returns {"status": "ok" | error kind, "error", "compile_s", "ttfm_s", "instances": [...], "tbm_us"}.
    Each instance entry: {"valid", "ok", "reject_at" (token index, len(tokens) = at the end, None =
    accepted), "mismatch" (engine inconsistency, e.g. mask allowed a token that accept refused)}.
    """
    perf = time.perf_counter
    start = perf()
    try:
        compiled = adapter.compile(schema_text)
    except Exception as exc:  # noqa: BLE001 - every engine failure is a recorded outcome
        return {"status": adapter.error_kind(exc), "error": _short(exc), "compile_s": perf() - start,
                "instances": [], "tbm_us": np.zeros(0, np.float32)}
    compile_s = perf() - start
    if on_compiled is not None:
        on_compiled(compile_s)
    stops = adapter.stop_token_ids
    tbm: list[float] = []
    results = []
    try:
        mask = adapter.allocate_mask()
        started = perf()
        matcher = adapter.new_matcher(compiled)
        adapter.fill_mask(matcher, mask)
        ttfm_s = compile_s + (perf() - started)
        for index, (valid, tokens) in enumerate(instances):
            if index > 0:
                matcher = adapter.new_matcher(compiled)
                started = perf()
                adapter.fill_mask(matcher, mask)
                tbm.append(perf() - started)
            reject_at, mismatch = None, None
            for position, token in enumerate(tokens):
                if not mask.allows(token):
                    reject_at = position
                    break
                started = perf()
                if not adapter.accept(matcher, token):
                    reject_at, mismatch = position, "mask allowed a token accept refused"
                    break
                adapter.fill_mask(matcher, mask)
                tbm.append(perf() - started)
            if reject_at is None:
                stop_allowed = any(mask.allows(s) for s in stops)
                if stop_allowed != adapter.is_accepting(matcher):
                    mismatch = f"stop token allowed={stop_allowed} but is_accepting={not stop_allowed}"
                if not stop_allowed:
                    reject_at = len(tokens)
            results.append({"valid": bool(valid), "ok": (reject_at is None) == bool(valid),
                            "reject_at": reject_at, "mismatch": mismatch})
    except Exception as exc:  # noqa: BLE001
        return {"status": "runtime_error", "error": _short(exc), "compile_s": compile_s,
                "instances": results, "tbm_us": np.asarray(tbm, np.float64).astype(np.float32) * 1e6}
    return {"status": "ok", "error": None, "compile_s": compile_s, "ttfm_s": ttfm_s, "instances": results,
            "tbm_us": (np.asarray(tbm, np.float64) * 1e6).astype(np.float32)}


WARM_UP_SCHEMA = '{"type": "object", "properties": {"a": {"type": "string"}}}'


def warm_up(adapter) -> None:
    """One throwaway compile + mask, so lazy per-vocabulary work (llguidance builds its token trie on the
    first mask) is counted in tokenizer setup and not in the first schema's TTFM."""
    try:
        run_schema(adapter, WARM_UP_SCHEMA, [])
    except Exception:  # noqa: BLE001 - a failing warm-up shows up again, properly, on real schemas
        pass


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + "..."


# ------------------------------------------------------------------------------------- the workers
def _limit_memory(gigabytes: float | None) -> None:
    if not gigabytes:
        return
    import resource  # noqa: PLC0415 - POSIX only
    limit = int(gigabytes * (1 << 30))
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _worker_main(conn, engine_spec: str, tokenizer_name: str, memory_limit_gb, sys_path) -> None:
    """Child process: set the engine up once, then serve ("schema", text, instances) requests."""
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    try:
        from bench.adapters import EngineUnavailable, load_adapter  # noqa: PLC0415
        adapter = load_adapter(engine_spec)
        try:
            adapter.check_available()
        except EngineUnavailable as exc:
            conn.send(("unavailable", str(exc)))
            return
        tokenizer = load_tokenizer(tokenizer_name)
        _limit_memory(memory_limit_gb)
        started = time.perf_counter()
        adapter.setup(tokenizer, stop_token_ids(tokenizer))
        warm_up(adapter)
        # what serving stacks do once the model is loaded (vLLM does): the objects of setup (torch,
        # the tokenizer, the vocabulary) leave the cyclic GC's scans, which otherwise put 100-300 ms
        # pauses into random masks of every Python-hosted engine alike
        gc.freeze()
        conn.send(("ready", {"setup_s": time.perf_counter() - started, "version": adapter.version(),
                             "vocab_size": adapter.vocab_size, "stop_token_ids": adapter.stop_token_ids}))
    except Exception:  # noqa: BLE001
        conn.send(("setup_error", traceback.format_exc()[-2000:]))
        return
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "quit":
            return
        _, schema_text, instances = request
        result = run_schema(adapter, schema_text, instances,
                            on_compiled=lambda seconds: conn.send(("compiled", seconds)))
        conn.send(("done", result))


class EngineWorker:
    """One engine in its own (spawned) process, restarted after a crash or a timeout."""

    def __init__(self, engine_spec: str, tokenizer_name: str = "llama3", memory_limit_gb: float | None = 8.0,
                 setup_timeout: float = 900.0, defer_ready: bool = False):
        self.engine_spec = engine_spec
        self.tokenizer_name = tokenizer_name
        self.memory_limit_gb = memory_limit_gb
        self.setup_timeout = setup_timeout
        self.name = engine_spec
        self.info: dict = {}
        self.unavailable: str | None = None
        self.restarts = 0
        self.setup_seconds: list[float] = []
        self._process = None
        self._conn = None
        self._spawn()
        if not defer_ready:
            self.wait_ready()

    def _start(self) -> None:
        self._spawn()
        self.wait_ready()

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_worker_main, name=f"bench-{self.engine_spec}", daemon=True,
            args=(child_conn, self.engine_spec, self.tokenizer_name, self.memory_limit_gb, list(sys.path)))
        self._process.start()
        child_conn.close()
        self._conn = parent_conn

    def wait_ready(self) -> None:
        """Block until the spawned worker has set its engine up (or says it cannot)."""
        kind, payload = self._receive(self.setup_timeout)
        if kind == "ready":
            self.info = payload
            self.setup_seconds.append(payload["setup_s"])
        elif kind == "unavailable":
            self.unavailable = payload
            self.close()
        else:
            detail = payload if kind == "setup_error" else f"{kind} during setup ({payload})"
            self.close()
            raise RuntimeError(f"engine {self.engine_spec!r} failed to set up: {detail}")

    def _receive(self, timeout: float):
        """(kind, payload); kind "timeout" or "crash" when the child hangs or dies."""
        try:
            if not self._conn.poll(timeout):
                return "timeout", f"no answer within {timeout:g} s"
            return self._conn.recv()
        except (EOFError, ConnectionError, OSError):
            self._process.join(5)
            code = self._process.exitcode
            if code is not None and code < 0:
                try:
                    how = signal.Signals(-code).name
                except ValueError:
                    how = f"signal {-code}"
            else:
                how = f"exit code {code}"
            return "crash", f"worker died ({how})"

    def run(self, schema_text: str, instances, compile_timeout: float = 30.0, mask_timeout: float = 120.0) -> dict:
        """Run one schema; a crash/timeout becomes the result's status and the worker is restarted."""
        if self.unavailable:
            raise RuntimeError(self.unavailable)
        self._conn.send(("schema", schema_text, instances))
        kind, payload = self._receive(compile_timeout)
        compile_s = None
        if kind == "compiled":
            compile_s = payload
            kind, payload = self._receive(mask_timeout)
            if kind == "timeout":
                payload = f"mask phase: {payload}"
        elif kind == "timeout":
            payload = f"compile: {payload}"
        if kind == "done":
            return payload
        self._restart()
        return {"status": kind, "error": payload, "compile_s": compile_s, "instances": [],
                "tbm_us": np.zeros(0, np.float32)}

    def _restart(self) -> None:
        self.restarts += 1
        self.close()
        self._start()

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(("quit",))
            except (OSError, ValueError):
                pass
            self._process.join(0.5)
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None


def start_workers(engines, tokenizer_name, memory_limit_gb, log=print) -> dict[str, EngineWorker]:
    """Start one worker per engine; engines whose package is missing are skipped with a message."""
    workers = {}
    # Spawn every worker first, then wait: their tokenizer setups overlap.
    pending = [(engine, EngineWorker(engine, tokenizer_name, memory_limit_gb, defer_ready=True))
               for engine in engines]
    for engine, worker in pending:
        worker.wait_ready()
        if worker.unavailable:
            log(f"[bench] skipping {engine}: {worker.unavailable}")
            continue
        log(f"[bench] {engine} {worker.info['version']}: tokenizer setup {worker.info['setup_s']:.2f} s")
        workers[engine] = worker
    return workers


# ------------------------------------------------------------------------------------------ data
def list_splits(data_dir: Path) -> list[str]:
    return sorted(p.stem for p in Path(data_dir).glob("*.jsonl"))


def load_split(data_dir: Path, split: str, limit: int | None = None) -> list[dict]:
    """Records of one split; lines are split on "\\n" only (records contain U+2028)."""
    text = (Path(data_dir) / f"{split}.jsonl").read_text(encoding="utf-8")
    records = []
    for line in text.split("\n"):
        if line.strip():
            records.append(json.loads(line))
            if limit is not None and len(records) >= limit:
                break
    return records


def tokenize_instances(tokenizer, tests) -> list[tuple[bool, list[int]]]:
    texts = [json.dumps(t["data"]) for t in tests]
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [(bool(t["valid"]), list(ids)) for t, ids in zip(tests, encoded)]


def schema_row(engine: str, split: str, schema_id: str, result: dict, instances, tokenizer=None) -> dict:
    """The per-schema JSONL row: outcome, times, false negatives/positives (with where they happened)."""
    outcomes = result["instances"]
    false_negatives = [i for i, r in enumerate(outcomes) if r["valid"] and not r["ok"]]
    false_positives = [i for i, r in enumerate(outcomes) if not r["valid"] and not r["ok"]]
    tbm = result["tbm_us"]
    row = {
        "engine": engine, "split": split, "id": schema_id, "status": result["status"],
        "error": result.get("error"),
        "passed": result["status"] == "ok" and not false_negatives and not false_positives,
        "n_valid": sum(1 for v, _ in instances if v), "n_invalid": sum(1 for v, _ in instances if not v),
        "false_negatives": len(false_negatives), "false_positives": len(false_positives),
        "mismatches": sum(1 for r in outcomes if r.get("mismatch")),
        "compile_s": result.get("compile_s"), "ttfm_s": result.get("ttfm_s"),
        "n_masks": int(tbm.size), "tbm_sum_us": float(tbm.sum()) if tbm.size else 0.0,
        "tbm_max_us": float(tbm.max()) if tbm.size else None,
    }
    if tokenizer is not None and false_negatives:
        where = []
        for i in false_negatives[:3]:
            tokens = instances[i][1]
            at = outcomes[i]["reject_at"]
            where.append({"instance": i, "token_index": at, "n_tokens": len(tokens),
                          "prefix_tail": tokenizer.decode(tokens[max(0, at - 8):at]),
                          "token": tokenizer.decode(tokens[at:at + 1]) if at < len(tokens) else "<stop>",
                          "mismatch": outcomes[i]["mismatch"]})
        row["false_negative_at"] = where
    if false_positives:
        row["false_positive_instances"] = false_positives[:10]
    return row


# ------------------------------------------------------------------------------------- the command
def add_arguments(parser) -> None:
    from bench.adapters import DEFAULT_ENGINES  # noqa: PLC0415
    parser.add_argument("--splits", nargs="*", help="split names (default: all in --data-dir)")
    parser.add_argument("--limit-per-split", type=int, default=None, help="first N schemas of each split")
    parser.add_argument("--skip-per-split", type=int, default=0,
                        help="leave out the first N schemas of each split (to resume a stopped run)")
    parser.add_argument("--engines", nargs="*", default=list(DEFAULT_ENGINES),
                        help="engine names or module:Class (default: %(default)s)")
    parser.add_argument("--tokenizer", default="llama3", help="offline tokenizer name (default: llama3)")
    parser.add_argument("--data-dir", type=Path, default=MASKBENCH_DIR)
    parser.add_argument("--out", type=Path, default=None, help="results directory (default: bench/results/...)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-schema compile timeout, s")
    parser.add_argument("--mask-timeout", type=float, default=120.0, help="per-schema mask-phase timeout, s")
    parser.add_argument("--memory-limit-gb", type=float, default=8.0, help="RLIMIT_DATA per worker (0 = none)")
    parser.add_argument("--shard", default=None, help="K/N: only schemas whose index within their split is K mod N")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_maskbench(args, log=print) -> dict:
    """The ``maskbench`` command; returns the summary (also written to --out/results.json)."""
    from tqdm import tqdm  # noqa: PLC0415
    from bench import report  # noqa: PLC0415

    data_dir = Path(args.data_dir)
    splits = args.splits or list_splits(data_dir)
    out = Path(args.out) if args.out else default_out_dir("maskbench")
    out.mkdir(parents=True, exist_ok=True)
    started_wall = time.time()
    tokenizer = load_tokenizer(args.tokenizer)
    workers = start_workers(args.engines, args.tokenizer, args.memory_limit_gb or None, log)
    config = {"command": "maskbench", "argv": sys.argv, "splits": splits, "limit_per_split": args.limit_per_split,
              "skip_per_split": args.skip_per_split,
              "engines": list(workers), "skipped_engines": [e for e in args.engines if e not in workers],
              "tokenizer": args.tokenizer, "shard": args.shard, "data_dir": str(data_dir), "timeout_s": args.timeout,
              "mask_timeout_s": args.mask_timeout, "machine": machine_description(),
              "engine_info": {e: w.info for e, w in workers.items()}}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    tbm_files = {e: open(out / f"tbm-{_file_safe(e)}.f32", "wb") for e in workers}
    try:
        with open(out / "schemas.jsonl", "w", encoding="utf-8") as rows_file:
            for split in splits:
                records = load_split(data_dir, split, args.limit_per_split)[args.skip_per_split:]
                if args.shard:
                    k, n = map(int, args.shard.split("/"))
                    records = records[k::n]
                for record in tqdm(records, desc=f"maskbench {split}", unit="schema", disable=args.quiet,
                                   dynamic_ncols=True):
                    instances = tokenize_instances(tokenizer, record["tests"])
                    schema_text = json.dumps(record["schema"])
                    for engine, worker in workers.items():
                        result = worker.run(schema_text, instances, args.timeout, args.mask_timeout)
                        row = schema_row(engine, split, record["id"], result, instances, tokenizer)
                        # default=str: an odd object in an engine's error must not end a long run
                        rows_file.write(json.dumps(row, default=str) + "\n")
                        rows_file.flush()
                        result["tbm_us"].astype(np.float32).tofile(tbm_files[engine])
    finally:
        for handle in tbm_files.values():
            handle.close()
        for worker in workers.values():
            worker.close()
    config["wall_s"] = time.time() - started_wall
    config["worker_restarts"] = {e: w.restarts for e, w in workers.items()}
    config["setup_s"] = {e: w.setup_seconds for e, w in workers.items()}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    summary = report.write_maskbench_report([out], out, plots=not args.no_plots)
    log(summary["markdown"])
    log(f"[bench] wall time {config['wall_s']:.1f} s; results in {out}")
    return summary


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
