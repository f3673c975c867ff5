"""Media I/O: audio at 16 kHz mono, RGB images, video frames and audio tracks, fixed-length clips, and a probe.

    x = load_audio("dog.wav")                       # float32 (n,), 16 kHz mono
    im = load_image("dog.jpg")                      # PIL.Image, RGB
    v = video_frames("clip.mp4", n=8)               # 8 RGB frames evenly spaced, with their times
    a = load_audio("clip.mp4")                      # the clip's audio track, 16 kHz mono
    starts = clip_starts(probe("clip.mp4").duration, seconds=3.0, max_clips=20, seed=0)
    clips = segment(a, seconds=3.0, max_clips=20)   # (k, 48000)

Libraries: soundfile (libsndfile: WAV, FLAC, OGG, AIFF, MP3 ...) for audio files, Pillow for images, PyAV (its wheel
carries FFmpeg) for video containers and any audio format libsndfile does not read; resampling is
``scipy.signal.resample_poly`` on every path, so a WAV and the same audio inside an MP4 give the same samples.
A missing, unreadable or corrupt file raises :class:`~siftkit.core.errors.InputError` naming the file (the CLI
prints one ``siftkit:`` line and exits with code 2).

Choices the AVVA spec leaves open are marked [ours]: channels are averaged to mono; ``n`` evenly spaced frames sit
at the centres of ``n`` equal slices; a frame "at time t" is the last frame shown at or before t; a source shorter
than one window gives one zero-padded window, and the tail shorter than a window is dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

SAMPLE_RATE = 16_000  # Whisper's input rate
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".snd", ".caf", ".w64", ".rf64"}


def _file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", p)
    return p


# ------------------------------------------------------------------------------------------------------- audio
def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling along axis 0 by the reduced ratio ``sr_out / sr_in`` (float32 out)."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(x, int(sr_out) // g, int(sr_in) // g, axis=0).astype(np.float32)  # (n * up / down,)


def load_audio(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file, or the first audio track of a video, as float32 mono at ``sr`` Hz.

    Args:
        path: a WAV/FLAC/OGG/AIFF... file (read with soundfile) or any container FFmpeg reads (MP4, M4A, MKV, WebM,
            MP3...; read with PyAV).
        sr: output sample rate (16 kHz, Whisper's, by default).

    Returns:
        ``(n,)`` float32 samples in [-1, 1], channels averaged.

    Raises:
        InputError: the file is missing, unreadable, has no audio track, or holds no samples.
    """
    p = _file(path)
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            x, sr_in = sf.read(str(p), dtype="float32", always_2d=True)  # (n, channels)
        except (sf.LibsndfileError, RuntimeError, ValueError) as e:
            raise InputError(f"cannot read audio: {getattr(e, 'error_string', e)}", p) from None
        x = x.mean(axis=1)  # (n,)
    else:
        x, sr_in = _av_audio(p)
    if x.size == 0:
        raise InputError("no audio samples", p)
    return resample(x, sr_in, sr)


def _av_error(e: Exception) -> str:
    return str(getattr(e, "strerror", None) or e)


def _open_av(p: Path):
    import av

    try:
        return av.open(str(p))
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"cannot open media: {_av_error(e)}", p) from None


def _av_audio(p: Path) -> tuple[np.ndarray, int]:
    """The first audio track at its own rate, channels averaged: ``((n,), rate)``."""
    import av

    with _open_av(p) as c:
        if not c.streams.audio:
            raise InputError("no audio track", p)
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        to_float = av.AudioResampler(format="fltp")  # planar float, same layout and rate
        parts = []
        try:
            for frame in c.decode(stream):
                for f in to_float.resample(frame):
                    parts.append(f.to_ndarray().mean(axis=0))  # (channels, m) -> (m,)
            for f in to_float.resample(None):
                parts.append(f.to_ndarray().mean(axis=0))
        except (av.FFmpegError, ValueError) as e:
            raise InputError(f"cannot decode audio: {_av_error(e)}", p) from None
    x = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return x, int(rate)


# ------------------------------------------------------------------------------------------------------ images
def load_image(path: str | Path):
    """Read an image as an RGB :class:`PIL.Image.Image` (fully decoded, file closed).

    Raises:
        InputError: the file is missing, not an image, or truncated.
    """
    from PIL import Image, UnidentifiedImageError

    p = _file(path)
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot read image: {e}", p) from None


# ------------------------------------------------------------------------------------------------------- video
@dataclass
class VideoFrames:
    """Frames taken from a video: RGB images and the time (seconds from the stream start) each asks for."""

    images: list = field(default_factory=list)  # PIL.Image.Image, RGB
    times: list[float] = field(default_factory=list)


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # microseconds (av.time_base)
    return None


def frame_times(duration: float, n: int | None = None, fps: float | None = None, start: float = 0.0,
                end: float | None = None) -> list[float]:
    """Times to sample in ``[start, end)`` (end defaults to ``duration``): ``n`` slice centres, or every ``1/fps`` s.

    >>> frame_times(4.0, n=4)
    [0.5, 1.5, 2.5, 3.5]
    >>> frame_times(1.0, fps=4)
    [0.0, 0.25, 0.5, 0.75]
    """
    if (n is None) == (fps is None):
        raise ValueError("give exactly one of n and fps")
    end = duration if end is None else min(end, duration)
    span = end - start
    if span <= 0:
        return []
    if n is not None:
        if n < 1:
            raise ValueError("n must be >= 1")
        return [start + span * (i + 0.5) / n for i in range(n)]  # [ours] centres of n equal slices
    if fps <= 0:
        raise ValueError("fps must be > 0")
    k = int(np.ceil(span * fps - 1e-9))
    return [start + i / fps for i in range(k)]


def video_frames(path: str | Path, n: int | None = None, fps: float | None = None, start: float = 0.0,
                 end: float | None = None) -> VideoFrames:
    """Take ``n`` evenly spaced frames, or frames at ``fps``, from the first video stream (within [start, end)).

    The frame for time t is the last frame shown at or before t [ours] (the first frame for t before it). Frames
    are decoded in order, which is exact and fast for the short clips siftkit handles.

    Raises:
        InputError: the file is missing or unreadable, has no video stream, or no frame decodes.
    """
    import av

    p = _file(path)
    with _open_av(p) as c:
        if not c.streams.video:
            raise InputError("no video stream", p)
        stream = c.streams.video[0]
        t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        dur = _duration(c, stream)
        try:
            if dur is None:  # unknown length: one pass to find it
                dur = max((f.time or 0.0) - t0 for f in c.decode(stream)) + 1 / float(stream.average_rate or 25)
                c.seek(0)
            targets = frame_times(dur, n, fps, start, end)
            out = VideoFrames()
            prev = None
            j = 0
            for frame in c.decode(stream):
                t = (frame.time if frame.time is not None else 0.0) - t0
                while j < len(targets) and t > targets[j] + 1e-9:
                    out.images.append((prev if prev is not None else frame).to_image())
                    out.times.append(targets[j])
                    j += 1
                if j == len(targets):
                    break
                prev = frame
        except (av.FFmpegError, ValueError) as e:
            raise InputError(f"cannot decode video: {_av_error(e)}", p) from None
        if prev is None and not out.images:
            raise InputError("no video frame decodes", p)
        while j < len(targets):  # targets after the last frame's start: the last frame is still shown
            out.images.append(prev.to_image())
            out.times.append(targets[j])
            j += 1
    return out


# ------------------------------------------------------------------------------------------------------- clips
def clip_starts(duration: float, seconds: float = 3.0, max_clips: int | None = None, seed: int = 0) -> list[float]:
    """Start times of the fixed ``seconds``-long windows of a source, at most ``max_clips`` of them.

    AVVA cuts every video into 3-second clips and keeps at most 20 random clips of a long video (spec, "Clips").
    A source shorter than one window gives one window at 0 [ours]; the tail shorter than a window is dropped.

    >>> clip_starts(10.0, 3.0)
    [0.0, 3.0, 6.0]
    """
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    k = max(1, int(np.floor(duration / seconds + 1e-9)))
    idx = np.arange(k)
    if max_clips is not None and k > max_clips:
        idx = np.sort(np.random.default_rng(seed).choice(k, size=max_clips, replace=False))  # random, seeded
    return [float(i * seconds) for i in idx]


def segment(x: np.ndarray, sr: int = SAMPLE_RATE, seconds: float = 3.0, max_clips: int | None = None,
            seed: int = 0) -> np.ndarray:
    """Cut a signal into the windows of :func:`clip_starts`: ``(k, round(seconds * sr))``, zero-padded if short."""
    L = int(round(seconds * sr))
    starts = clip_starts(len(x) / sr, seconds, max_clips, seed)
    out = np.zeros((len(starts), L), dtype=x.dtype)  # (k, L)
    for i, s in enumerate(starts):
        piece = x[int(round(s * sr)): int(round(s * sr)) + L]
        out[i, : len(piece)] = piece
    return out


# ------------------------------------------------------------------------------------------------------- probe
@dataclass
class MediaInfo:
    """What :func:`probe` finds: the kind (audio, image or video), duration in seconds (0 for an image), streams."""

    path: str
    kind: str
    duration: float | None
    streams: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe(path: str | Path) -> MediaInfo:
    """Kind, duration and streams of a media file, without decoding it (an image's structure is verified).

    Raises:
        InputError: the file is missing or unreadable.
    """
    p = _file(path)
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as im:
                info = MediaInfo(str(p), "image", 0.0, [{"type": "image", "codec": (im.format or "").lower(),
                                                         "width": im.width, "height": im.height, "mode": im.mode}])
                im.verify()  # a truncated or corrupt file fails here, without decoding the pixels
            return info
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise InputError(f"cannot read image: {e}", p) from None
    if suffix in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            info = sf.info(str(p))
        except (sf.LibsndfileError, RuntimeError) as e:
            raise InputError(f"cannot read audio: {getattr(e, 'error_string', e)}", p) from None
        return MediaInfo(str(p), "audio", float(info.duration), [
            {"type": "audio", "codec": info.subtype.lower(), "sample_rate": info.samplerate,
             "channels": info.channels, "frames": info.frames}])
    with _open_av(p) as c:
        streams = []
        for s in c.streams:
            d: dict[str, Any] = {"type": s.type, "codec": s.codec_context.name if s.codec_context else None}
            if s.type == "audio":
                d.update(sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels)
            elif s.type == "video":
                d.update(width=s.codec_context.width, height=s.codec_context.height,
                         fps=float(s.average_rate) if s.average_rate else None, frames=s.frames)
            if s.duration is not None and s.time_base is not None:
                d["duration"] = float(s.duration * s.time_base)
            streams.append(d)
        types = {s["type"] for s in streams}
        if not types & {"audio", "video"}:
            raise InputError("no audio or video stream", p)
        dur = c.duration / 1_000_000 if c.duration is not None else None
    return MediaInfo(str(p), "video" if "video" in types else "audio", dur, streams)
