"""Describers run on the signals, and the frozen stand-in features of the dual encoder.

The paper captions video with LLaVA-NeXT-Video and audio with LTU-AS; neither ships offline here. The describers
below are small interfaces with offline defaults [ours]:

* :class:`SignalAudioDescriber`: dominant frequency (FFT peak), loudness (RMS in dBFS), pulse rate (the envelope's
  spectrum peak) and tonality (spectral flatness) -> words; with a ``lexicon`` (frequency -> sound source, as in the
  synthetic world) it also names the source it recognises. :class:`WhisperSpeechDescriber` adds the speech heard by
  Whisper (:mod:`siftkit.core.whisper`; faster-whisper, tiny.en by default), for real clips.
* :class:`SignalImageDescriber`: the dominant non-background colour, the shape from the bounding-box fill ratio and
  aspect, size and vertical position -> words; with a ``lexicon`` ((colour, shape) -> object) it names the object.
* :class:`DinoImageEncoder`: the DINOv2 loading path (``transformers`` ``Dinov2Model``) for patch tokens; no DINOv2
  checkpoint ships offline, so it is tested on a tiny random-initialised model only.

Frozen stand-in features [ours]: :func:`audio_tokens` (log band energies of 8 frames: a log-mel-like stand-in for
Whisper's layer-stacked encoder states) and :func:`image_tokens` (the 16 raw 8x8 RGB patches of a 32x32 frame: a
stand-in for DINOv2 patch tokens).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PALETTE = {"red": (0.9, 0.15, 0.15), "green": (0.15, 0.75, 0.2), "blue": (0.15, 0.3, 0.9), "yellow": (0.95, 0.85, 0.1)}
SHAPES = ("circle", "square", "triangle", "bar")
BACKGROUND = 0.5


# ---------------------------------------------------------------------------------------------- features
def audio_tokens(x: np.ndarray, sr: int, frames: int = 8, bands: int = 32, fmin: float = 50.0) -> np.ndarray:
    """``(frames, bands)`` log energies in log-spaced bands from ``fmin`` to ``sr/2`` over equal time frames."""
    x = np.asarray(x, dtype=np.float64)
    pieces = np.array_split(x, frames)
    edges = np.geomspace(fmin, sr / 2, bands + 1)
    out = np.empty((frames, bands))
    for i, p in enumerate(pieces):
        spec = np.abs(np.fft.rfft(p * np.hanning(len(p)))) ** 2 / max(len(p), 1)
        freqs = np.fft.rfftfreq(len(p), 1 / sr)
        idx = np.clip(np.searchsorted(edges, freqs) - 1, 0, bands - 1)
        e = np.bincount(idx[freqs >= fmin], weights=spec[freqs >= fmin], minlength=bands)
        out[i] = np.log10(e + 1e-8)
    return out.astype(np.float32)


def image_tokens(img: np.ndarray, size: int = 32, patch: int = 8) -> np.ndarray:
    """``(patches, patch*patch*3)``: the non-overlapping patches of the frame resized to ``size`` x ``size``."""
    a = _as_rgb(img, size)
    g = size // patch
    return a.reshape(g, patch, g, patch, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, patch * patch * 3).astype(
        np.float32)


def _as_rgb(img, size: int | None = None) -> np.ndarray:
    """Float RGB in [0, 1], ``(H, W, 3)``; PIL images and uint8 arrays accepted, resized when ``size`` is given."""
    from PIL import Image

    if isinstance(img, np.ndarray) and img.dtype != np.uint8 and (size is None or img.shape[:2] == (size, size)):
        return np.clip(img, 0, 1).astype(np.float64)
    im = img if isinstance(img, Image.Image) else Image.fromarray(
        np.asarray(img if np.asarray(img).dtype == np.uint8 else np.clip(np.asarray(img) * 255, 0, 255), np.uint8))
    if size is not None:
        im = im.convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


# ---------------------------------------------------------------------------------------------- audio
@dataclass
class AudioDescription:
    caption: str
    dominant_hz: float
    loudness_db: float
    pulse_hz: float
    flatness: float
    source: str | None = None


class SignalAudioDescriber:
    """Describe a mono signal in words from its spectrum [ours].

    Args:
        lexicon: optional ``{frequency_hz: "a dog barking"}``; the entry nearest in log-frequency to the dominant
            frequency names the source (the synthetic world's recogniser).
    """

    def __init__(self, lexicon: Mapping[float, str] | None = None):
        self.lexicon = dict(lexicon or {})

    def describe(self, x: np.ndarray, sr: int) -> AudioDescription:
        x = np.asarray(x, dtype=np.float64)
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1 / sr)
        band = freqs >= 40
        dom = float(freqs[band][np.argmax(spec[band])]) if band.any() else 0.0
        rms = float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0
        db = 20 * np.log10(rms + 1e-9)
        env = np.abs(x)
        hop = max(1, sr // 200)  # envelope at 200 Hz
        env = env[: len(env) // hop * hop].reshape(-1, hop).mean(1) if len(env) >= hop else env
        es = np.abs(np.fft.rfft(env - env.mean())) if len(env) > 4 else np.zeros(1)
        ef = np.fft.rfftfreq(len(env), 1 / 200) if len(env) > 4 else np.zeros(1)
        ok = (ef >= 0.5) & (ef <= 20)
        pulse = float(ef[ok][np.argmax(es[ok])]) if ok.any() else 0.0
        p = spec[band] ** 2 + 1e-12
        flat = float(np.exp(np.mean(np.log(p))) / np.mean(p)) if band.any() else 1.0
        source = None
        if self.lexicon:
            keys = np.array(list(self.lexicon))
            source = self.lexicon[float(keys[np.argmin(np.abs(np.log(keys) - np.log(max(dom, 1.0))))])]
        pitch = "low-pitched" if dom < 400 else "mid-pitched" if dom < 1200 else "high-pitched"
        loud = "quiet" if db < -30 else "moderate" if db < -18 else "loud"
        kind = "noisy" if flat > 0.3 else "tonal"
        words = f"{pitch} {kind} sound around {dom:.0f} Hz, {loud}, pulsing {pulse:.0f} times per second"
        return AudioDescription(f"{source}; {words}" if source else words, dom, db, pulse, flat, source)


class WhisperSpeechDescriber:
    """Speech in the clip through Whisper (faster-whisper): appends ``speech: "..."`` to a sound description.

    faster-whisper (CTranslate2) exposes only the decoded text and the last encoder layer, not the per-layer states
    the paper stacks; see docs/avva.md.
    """

    def __init__(self, model: str = "tiny.en", threads: int = 2, sound: SignalAudioDescriber | None = None):
        from siftkit.core.whisper import Whisper

        self.whisper = Whisper(model, threads=threads)
        self.sound = sound or SignalAudioDescriber()

    def describe(self, x: np.ndarray, sr: int) -> AudioDescription:
        from siftkit.core.media import SAMPLE_RATE, resample

        d = self.sound.describe(x, sr)
        x16 = resample(np.asarray(x, dtype=np.float32), sr, SAMPLE_RATE) if sr != SAMPLE_RATE else x
        t = self.whisper.transcribe(np.asarray(x16, dtype=np.float32), vad_filter=True).text.strip()
        if t:
            d.caption += f'; speech: "{t}"'
        return d


# ---------------------------------------------------------------------------------------------- image
@dataclass
class ImageDescription:
    caption: str
    colour: str | None
    shape: str | None
    size: float
    source: str | None = None


class SignalImageDescriber:
    """Describe a frame from its pixels [ours]: non-background mask (colour distance from the grey background),
    dominant colour (nearest palette entry), shape (bounding-box fill ratio and aspect), size and position.

    Args:
        lexicon: optional ``{(colour, shape): "a dog"}`` naming the recognised object (the synthetic world).
    """

    def __init__(self, lexicon: Mapping[tuple[str, str], str] | None = None, threshold: float = 0.3):
        self.lexicon = dict(lexicon or {})
        self.threshold = threshold

    def describe(self, img) -> ImageDescription:
        a = _as_rgb(img)
        mask = np.linalg.norm(a - BACKGROUND, axis=-1) > self.threshold
        if mask.sum() < 3:
            mean = a.reshape(-1, 3).mean(0)
            colour = min(PALETTE, key=lambda c: np.linalg.norm(mean - PALETTE[c]))
            return ImageDescription(f"a mostly {colour}-tinted scene with no distinct object", colour, None, 0.0)
        mean = a[mask].mean(0)
        colour = min(PALETTE, key=lambda c: np.linalg.norm(mean - np.array(PALETTE[c])))
        ys, xs = np.nonzero(mask)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        fill = mask.sum() / (h * w)
        shape = "bar" if w / h > 2 else "square" if fill > 0.88 else "circle" if fill > 0.64 else "triangle"
        size = float(max(h, w) / max(a.shape[:2]))
        pos = float(ys.mean() / a.shape[0])
        where = "top" if pos < 0.4 else "middle" if pos < 0.6 else "bottom"
        big = "small" if size < 0.5 else "medium" if size < 0.7 else "large"
        words = f"{big} {colour} {shape} at the {where} of the frame"
        source = self.lexicon.get((colour, shape))
        return ImageDescription(f"{source}: {words}" if source else words, colour, shape, size, source)


class DinoImageEncoder:
    """Patch tokens of a DINOv2 model (``transformers.Dinov2Model``), the paper's frozen visual backbone.

    Args:
        path: a DINOv2 checkpoint folder (e.g. facebook/dinov2-large, not shipped offline here).
        drop_cls: return the patch tokens only (the CLS token dropped).
    """

    def __init__(self, path: str, drop_cls: bool = True):
        import torch
        from transformers import Dinov2Model

        self.model = Dinov2Model.from_pretrained(path).eval()
        self.size = int(self.model.config.image_size)
        self.drop_cls = drop_cls
        self.torch = torch

    def encode(self, images: Sequence) -> np.ndarray:
        """``(B, tokens, hidden)`` last-layer states; images resized to the model size, ImageNet-normalised."""
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        x = np.stack([(_as_rgb(im, self.size) - mean) / std for im in images]).transpose(0, 3, 1, 2)
        with self.torch.no_grad():
            h = self.model(pixel_values=self.torch.as_tensor(x, dtype=self.torch.float32)).last_hidden_state
        return (h[:, 1:] if self.drop_cls else h).numpy()


def make_tiny_dinov2(path, seed: int = 0, image_size: int = 32, patch_size: int = 8) -> str:
    """Write a random-initialised tiny DINOv2 (hidden 32, 2 layers) for tests of the loading path."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=image_size, patch_size=patch_size)
    Dinov2Model(cfg).save_pretrained(path)
    return str(path)
