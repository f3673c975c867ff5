"""A procedural audio-visual world with known correspondences [ours, spec Sec. 7].

Sixteen classes, each a sound source with an audio signature (a harmonic tone at a class frequency, log-spaced
200-3000 Hz, detuned per clip) and a visual signature (one of 4 colours x 4 shapes on a grey, noisy 32x32 frame).
Inside a class, two instance parameters are shared by the two modalities, so retrieval can tell clips of one class
apart: the object's size sets the loudness, its vertical position sets the pulse rate of the sound.

A fraction ``rho`` of the clips is misaligned: the audio comes from another class with its own, independent instance
parameters. The captions come from the describers run on the signals (:mod:`siftkit.curation.describe`), never from
these labels; the labels are kept only to measure the describers' error and the judge's ROC-AUC.

Signals are 3 s at 8 kHz [ours: enough for tones up to 3.6 kHz]; each clip keeps its captions and its frozen
stand-in features (audio ``(8, 32)`` band energies, video ``(16, 192)`` patches), not the waveform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siftkit.curation.describe import (BACKGROUND, PALETTE, SHAPES, SignalAudioDescriber, SignalImageDescriber,
                                       audio_tokens, image_tokens)

SR = 8000
SECONDS = 3.0
SIZE = 32
CLASSES = (("dog", "barking"), ("cat", "meowing"), ("bird", "chirping"), ("car", "engine running"),
           ("train", "rumbling"), ("drum", "beating"), ("guitar", "strumming"), ("piano", "playing"),
           ("bell", "ringing"), ("clock", "ticking"), ("phone", "ringing"), ("baby", "crying"),
           ("kettle", "whistling"), ("horn", "honking"), ("frog", "croaking"), ("fan", "humming"))
FREQS = np.geomspace(200.0, 3000.0, len(CLASSES))
COLOURS = tuple(PALETTE)


def visual_signature(c: int) -> tuple[str, str]:
    return COLOURS[c // len(SHAPES)], SHAPES[c % len(SHAPES)]


def audio_lexicon() -> dict[float, str]:
    return {float(f): f"a {n} {v}" for f, (n, v) in zip(FREQS, CLASSES)}


def image_lexicon() -> dict[tuple[str, str], str]:
    return {visual_signature(c): f"a {n}" for c, (n, _) in enumerate(CLASSES)}


def render_audio(c: int, size: float, pos: float, rng: np.random.Generator, detune_sd: float = 0.04,
                 noise: tuple[float, float] = (0.05, 0.5)) -> np.ndarray:
    """3 s of class ``c``: detuned harmonic tone, loudness from ``size``, pulse rate from ``pos``, white noise."""
    t = np.arange(int(SR * SECONDS)) / SR
    f = FREQS[c] * np.exp(rng.normal(0, detune_sd))
    amp = 0.05 + 0.45 * (size - 0.35) / 0.55
    rate = 1.0 + 7.0 * pos
    env = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    tone = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * 2 * f * t + 1.0)
    return (amp * env * tone / 1.4 + amp * rng.uniform(*noise) * rng.normal(size=t.shape)).astype(np.float32)


def render_image(c: int, size: float, pos: float, rng: np.random.Generator, colour_sd: float = 0.08,
                 noise_sd: float = 0.06) -> np.ndarray:
    """A ``(32, 32, 3)`` frame: class ``c``'s shape and colour, ``size`` x 32 px, centred at height ``pos``."""
    colour, shape = visual_signature(c)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    s = size * SIZE
    cy = np.clip(pos * SIZE, s / 2, SIZE - s / 2)
    cx = rng.uniform(s / 2, SIZE - s / 2)
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        m = dx ** 2 + dy ** 2 <= (s / 2) ** 2
    elif shape == "square":
        m = (np.abs(dx) <= s / 2) & (np.abs(dy) <= s / 2)
    elif shape == "triangle":  # apex up
        m = (dy >= -s / 2) & (dy <= s / 2) & (np.abs(dx) <= (dy + s / 2) / 2)
    else:  # bar: s wide, s/4 high
        m = (np.abs(dx) <= s / 2) & (np.abs(dy) <= s / 8)
    img = np.full((SIZE, SIZE, 3), BACKGROUND) + rng.normal(0, noise_sd, (SIZE, SIZE, 3))
    img[m] = np.array(PALETTE[colour]) + rng.normal(0, colour_sd, 3)
    return np.clip(img, 0, 1)


@dataclass
class AVSet:
    """A synthetic set: per clip the stand-in features, the describers' captions and (for evaluation only) labels."""

    audio: np.ndarray  # (M, 8, 32)
    video: np.ndarray  # (M, 16, 192)
    audio_caption: list[str]
    video_caption: list[str]
    audio_class: np.ndarray  # true classes, evaluation only
    video_class: np.ndarray
    audio_pred: np.ndarray  # the describers' recognised class (-1 when none)
    video_pred: np.ndarray
    aligned: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.aligned)

    def subset(self, mask) -> "AVSet":
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return AVSet(self.audio[idx], self.video[idx], [self.audio_caption[i] for i in idx],
                     [self.video_caption[i] for i in idx], self.audio_class[idx], self.video_class[idx],
                     self.audio_pred[idx], self.video_pred[idx], self.aligned[idx])

    def describer_error(self) -> dict[str, float]:
        return {"audio_describer_error": float(np.mean(self.audio_pred != self.audio_class)),
                "video_describer_error": float(np.mean(self.video_pred != self.video_class))}


def generate(n: int, rho: float = 0.3, seed: int = 0) -> AVSet:
    """``n`` clips, a share ``rho`` misaligned (exactly ``round(rho * n)``, at random positions), seeded."""
    if not 0 <= rho <= 1:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    rng = np.random.default_rng(seed)
    C = len(CLASSES)
    vc = rng.integers(0, C, n)
    aligned = np.ones(n, bool)
    aligned[rng.choice(n, int(round(rho * n)), replace=False)] = False
    ac = np.where(aligned, vc, (vc + rng.integers(1, C, n)) % C)
    size, pos = rng.uniform(0.35, 0.9, n), rng.uniform(0.2, 0.8, n)
    asize = np.where(aligned, size, rng.uniform(0.35, 0.9, n))
    apos = np.where(aligned, pos, rng.uniform(0.2, 0.8, n))
    ad, vd = SignalAudioDescriber(audio_lexicon()), SignalImageDescriber(image_lexicon())
    a_index = {f"a {nm} {v}": i for i, (nm, v) in enumerate(CLASSES)}
    v_index = {f"a {nm}": i for i, (nm, _) in enumerate(CLASSES)}
    A, V, acap, vcap, ap, vp = [], [], [], [], [], []
    for i in range(n):
        wav = render_audio(int(ac[i]), asize[i], apos[i], rng)
        img = render_image(int(vc[i]), size[i], pos[i], rng)
        da, dv = ad.describe(wav, SR), vd.describe(img)
        A.append(audio_tokens(wav, SR))
        V.append(image_tokens(img))
        acap.append(da.caption)
        vcap.append(dv.caption)
        ap.append(a_index.get(da.source, -1))
        vp.append(v_index.get(dv.source, -1))
    return AVSet(np.stack(A), np.stack(V), acap, vcap, ac, vc, np.array(ap), np.array(vp), aligned)
