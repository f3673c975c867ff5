"""Whisper loader: the base model is assembled once from its two wheels; tiny.en and base transcribe a synthetic
speech file (tests/core/fixtures/fox_espeak.flac, made with espeak-ng, see fixtures/README.md) and a tone."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from siftkit.core.assets import whisper_base_parts
from siftkit.core.errors import InputError
from siftkit.core.whisper import MARKER, Transcript, Whisper, assemble_whisper_base, whisper_dir

FOX = Path(__file__).parent / "fixtures" / "fox_espeak.flac"
FOX_WORDS = "the quick brown fox jumps over the lazy dog".split()

pytestmark = pytest.mark.skipif(whisper_base_parts() is None, reason="Whisper packages not installed")


def sha256(*paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(16 << 20), b""):
                h.update(block)
    return h.hexdigest()


def words_heard(text):
    heard = set("".join(c if c.isalpha() else " " for c in text.lower()).split())
    return sum(w in heard for w in set(FOX_WORDS))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        d = tmp_path_factory.mktemp("siftkit_home")
        mp.setenv("SIFTKIT_HOME", str(d))
        yield d


def test_base_is_assembled_once(home, monkeypatch):
    p1, p2 = whisper_base_parts()
    d = assemble_whisper_base()
    assert d == home / "models" / "whisper-base"
    assert sha256(d / "model.bin") == sha256(p1 / "model.bin.part1", p2 / "model.bin.part2")
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (d / name).read_bytes() == (p1 / name).read_bytes()
    assert sorted(os.listdir(d.parent)) == ["whisper-base"]  # no temporary folder left behind
    stamp = (d / "model.bin").stat().st_mtime_ns

    def no_copy(*a, **k):
        raise AssertionError("re-assembled")

    monkeypatch.setattr(shutil, "copyfileobj", no_copy)
    assert whisper_dir("base") == d and (d / "model.bin").stat().st_mtime_ns == stamp


def test_a_stale_base_folder_is_rebuilt(tmp_path):
    d = tmp_path / "wb"
    d.mkdir()
    (d / "model.bin").write_bytes(b"half")
    (d / MARKER).write_text("{}")
    assert assemble_whisper_base(d) == d
    p1, p2 = whisper_base_parts()
    assert (d / "model.bin").stat().st_size == (p1 / "model.bin.part1").stat().st_size + (
        p2 / "model.bin.part2").stat().st_size
    assert sorted(os.listdir(tmp_path)) == ["wb"]


def test_unknown_model_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown Whisper model 'large'"):
        whisper_dir("large")
    with pytest.raises(InputError, match="unknown Whisper model"):
        whisper_dir(tmp_path)


@pytest.fixture(scope="module")
def tiny():
    return Whisper("tiny.en", threads=2)


def test_tiny_en_recognises_synthetic_speech(tiny):
    t = tiny.transcribe(FOX)
    assert isinstance(t, Transcript) and t.language == "en" and not tiny.multilingual
    assert words_heard(t.text) >= 6, t.text  # of 8 distinct words; espeak-ng's voice is robotic
    assert t.segments and 0 <= t.segments[0].start < t.segments[-1].end <= t.duration + 0.5
    assert t.duration == pytest.approx(4.32, abs=0.01)


def test_path_and_samples_give_the_same_transcript(tiny):
    from siftkit.core.media import load_audio

    assert tiny.transcribe(load_audio(FOX)).text == tiny.transcribe(FOX).text
    with pytest.raises(ValueError):
        tiny.transcribe(np.zeros((2, 16000), np.float32))


def test_base_detects_english_and_transcribes_speech_and_a_tone(home):
    base = Whisper("base", threads=2)
    assert base.multilingual and base.path == home / "models" / "whisper-base"
    t = base.transcribe(FOX)
    assert t.language == "en" and t.language_probability > 0.5
    assert words_heard(t.text) >= 6, t.text
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    r = base.transcribe(tone, language="en")
    assert isinstance(r, Transcript) and r.duration == pytest.approx(1.0) and r.language == "en"
