"""The Whisper speech describer (siftkit.curation.describe.WhisperSpeechDescriber) on Whisper tiny.en: speech
(tests/core/fixtures/fox_espeak.flac, synthetic, espeak-ng) over a tone at 44.1 kHz, a pure tone, and two real
non-speech clips from ../shared/data/avva (skipped when absent)."""

from pathlib import Path

import numpy as np
import pytest

from siftkit.core.errors import InputError
from siftkit.core.media import SAMPLE_RATE, load_audio, resample
from siftkit.curation.describe import SignalAudioDescriber, WhisperSpeechDescriber
from siftkit.curation.judge import judge_prompt

FOX = Path(__file__).parents[1] / "core" / "fixtures" / "fox_espeak.flac"
FOX_WORDS = set("the quick brown fox jumps over the lazy dog".split())
SR = 44_100  # the real clips' rate: the describer resamples to Whisper's 16 kHz itself


@pytest.fixture(scope="module")
def describer():
    try:
        return WhisperSpeechDescriber("tiny.en", threads=1)
    except (InputError, ImportError) as e:
        pytest.skip(f"Whisper tiny.en not available: {e}")


def _speech(text: str) -> str:
    assert text.count('; speech: "') == 1 and text.endswith('"'), text
    return text.split('; speech: "')[1][:-1]


def test_speech_over_a_tone_is_heard_and_the_sound_still_described(describer):
    fox = resample(load_audio(FOX), SAMPLE_RATE, SR)
    x = (fox + 0.05 * np.sin(2 * np.pi * 3000 * np.arange(len(fox)) / SR)).astype(np.float32)
    d = describer.describe(x, SR)
    sound = SignalAudioDescriber().describe(x, SR)
    assert d.caption.startswith(sound.caption + '; speech: "')  # the sound description, then the transcript
    assert d.dominant_hz == pytest.approx(3000, abs=5)  # the tone, not the voice, is the spectral peak
    heard = set("".join(c if c.isalpha() else " " for c in _speech(d.caption).lower()).split())
    assert len(heard & FOX_WORDS) >= 6, d.caption  # of 8 distinct words; espeak-ng's voice is robotic
    user = judge_prompt(d.caption, "a fox")[1]["content"]  # the transcript is data inside the audio block
    assert user.index("<audio_caption>") < user.index("quick") < user.index("</audio_caption>")


def test_a_pure_tone_gets_no_speech(describer):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)).astype(np.float32)
    d = describer.describe(tone, SR)
    assert d.caption == SignalAudioDescriber().describe(tone, SR).caption  # the VAD filter keeps Whisper quiet
    assert "speech" not in d.caption and d.dominant_hz == pytest.approx(440, abs=1)


@pytest.mark.parametrize("name", ["car_horn_1-24074-A-43.wav", "thunder_3-144891-B-19.wav"])
def test_real_non_speech_clips_get_no_invented_speech(describer, shared_data, name):
    wav = shared_data / "avva" / "audioclip_demo" / "audio" / name
    x = load_audio(wav)[: 3 * SAMPLE_RATE]  # one 3-second clip, 16 kHz mono
    d = describer.describe(x, SAMPLE_RATE)
    assert d.caption == SignalAudioDescriber().describe(x, SAMPLE_RATE).caption
    assert "speech" not in d.caption
