"""Media I/O on files generated here (soundfile, Pillow, PyAV), on the real AVVA files in ../shared/data/avva, and on
bad files (one ``siftkit:`` line, exit 2)."""

import json
import subprocess
import sys

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from scipy.signal import resample_poly

from siftkit.core.errors import InputError
from siftkit.core.media import (clip_starts, frame_times, load_audio, load_image, probe, resample, segment,
                                video_frames)


def tone(sr, seconds, hz=440.0, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)]


def make_mp4(path, seconds=2.0, fps=10, sr=22050, size=(32, 24), audio=True, video=True, fmt=None):
    """Frame i is a flat grey of level (255 * i) // (seconds * fps); the audio track is a 440 Hz tone."""
    n_frames = int(seconds * fps)
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("mpeg4", rate=fps) if video else None  # every stream before the first packet
        st = out.add_stream("aac", rate=sr, layout="mono") if audio else None
        if video:
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
            for i in range(n_frames):
                img = np.full((size[1], size[0], 3), (255 * i) // n_frames, np.uint8)
                for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)
        if audio:
            x = tone(sr, seconds)
            for k in range(0, len(x), 1024):
                f = av.AudioFrame.from_ndarray(x[None, k:k + 1024], format="fltp", layout="mono")
                f.sample_rate, f.pts = sr, k
                for pkt in st.encode(f):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
    return path


# ------------------------------------------------------------------------------------------------------ audio
def test_wav_is_averaged_to_mono_and_resampled_polyphase(tmp_path):
    left = tone(44100, 1.0)
    stereo = np.stack([left, left + 0.2], axis=1)  # mean = tone + 0.1
    sf.write(tmp_path / "a.wav", stereo, 44100, subtype="FLOAT")
    x = load_audio(tmp_path / "a.wav")
    assert x.dtype == np.float32 and x.shape == (16000,)  # 44100 * 160 / 441
    np.testing.assert_allclose(x, resample_poly(left + 0.1, 160, 441), atol=1e-6)
    assert peak_hz(x, 16000) == pytest.approx(440, abs=2)
    assert x[4000:12000].mean() == pytest.approx(0.1, abs=1e-3)  # the DC offset survives resampling


def test_16k_flac_is_returned_sample_for_sample_and_ogg_keeps_its_pitch(tmp_path):
    x = tone(16000, 0.5)
    sf.write(tmp_path / "a.flac", x, 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(tmp_path / "a.flac"), x, atol=1 / 32768)
    sf.write(tmp_path / "a.ogg", tone(48000, 1.0, hz=1000), 48000, format="OGG", subtype="VORBIS")
    y = load_audio(tmp_path / "a.ogg")
    assert abs(len(y) - 16000) <= 16 and peak_hz(y, 16000) == pytest.approx(1000, abs=2)
    assert load_audio(tmp_path / "a.flac", sr=8000).shape == (4000,)


def test_resample_identity_and_ratio():
    x = tone(22050, 1.0)
    assert resample(x, 22050, 22050) is x
    assert resample(x, 22050, 16000).shape == (16000,)  # 22050 * 320 / 441


# ------------------------------------------------------------------------------------------------------ images
def test_images_come_back_rgb(tmp_path):
    rgba = Image.new("RGBA", (5, 3), (10, 20, 30, 128))
    rgba.save(tmp_path / "a.png")
    im = load_image(tmp_path / "a.png")
    assert (im.mode, im.size, im.getpixel((4, 2))) == ("RGB", (5, 3), (10, 20, 30))
    Image.new("L", (8, 8), 77).save(tmp_path / "g.jpg", quality=95)
    g = load_image(tmp_path / "g.jpg")
    r, gg, b = g.getpixel((3, 3))
    assert g.mode == "RGB" and r == gg == b and abs(r - 77) <= 1


# ------------------------------------------------------------------------------------------------------- video
def test_frame_times_by_hand():
    assert frame_times(4.0, n=4) == [0.5, 1.5, 2.5, 3.5]
    assert frame_times(1.0, fps=4) == [0.0, 0.25, 0.5, 0.75]
    assert frame_times(10.0, n=2, start=3.0, end=6.0) == [3.0 + 3 / 4, 3.0 + 3 * 3 / 4]
    assert frame_times(2.0, fps=2, start=1.0, end=9.0) == [1.0, 1.5]
    with pytest.raises(ValueError):
        frame_times(1.0)


def test_video_frames_evenly_spaced_and_at_fps(tmp_path):
    p = make_mp4(tmp_path / "c.mp4")  # 20 frames at 10 fps, frame i grey (255 * i) // 20
    v = video_frames(p, n=4)
    assert v.times == [0.25, 0.75, 1.25, 1.75]
    shown = [2, 7, 12, 17]  # the frame on screen at each time: floor(t * 10)
    levels = [im.getpixel((16, 12))[0] for im in v.images]
    assert all(abs(lv - (255 * i) // 20) <= 4 for lv, i in zip(levels, shown)), levels
    assert all(im.mode == "RGB" and im.size == (32, 24) for im in v.images)
    w = video_frames(p, fps=2, start=0.5, end=1.5)
    assert w.times == [0.5, 1.0]
    assert [abs(im.getpixel((16, 12))[0] - (255 * i) // 20) <= 4 for im, i in zip(w.images, [5, 10])] == [True] * 2


def test_audio_track_of_mp4_and_probe(tmp_path):
    p = make_mp4(tmp_path / "c.mp4")
    x = load_audio(p)
    assert abs(len(x) / 16000 - 2.0) < 0.1  # AAC adds up to one frame of priming
    assert peak_hz(x, 16000) == pytest.approx(440, abs=2)
    info = probe(p).to_dict()
    assert info["kind"] == "video" and info["duration"] == pytest.approx(2.0, abs=0.05)
    by_type = {s["type"]: s for s in info["streams"]}
    assert (by_type["video"]["width"], by_type["video"]["height"], by_type["video"]["fps"]) == (32, 24, 10.0)
    assert (by_type["audio"]["sample_rate"], by_type["audio"]["channels"]) == (22050, 1)
    sf.write(tmp_path / "a.wav", tone(8000, 1.5), 8000)
    assert probe(tmp_path / "a.wav").to_dict() == {"path": str(tmp_path / "a.wav"), "kind": "audio", "duration": 1.5,
                                                    "streams": [{"type": "audio", "codec": "pcm_16",
                                                                 "sample_rate": 8000, "channels": 1, "frames": 12000}]}


def test_missing_streams_are_input_errors(tmp_path):
    silent = make_mp4(tmp_path / "silent.mp4", audio=False)
    with pytest.raises(InputError, match="no audio track"):
        load_audio(silent)
    sound = make_mp4(tmp_path / "sound.m4a", video=False, fmt="mp4")
    assert probe(sound).kind == "audio" and peak_hz(load_audio(sound), 16000) == pytest.approx(440, abs=2)
    with pytest.raises(InputError, match="no video stream"):
        video_frames(sound, n=1)


# ------------------------------------------------------------------------------------------------------- clips
def test_clip_starts_and_segments_by_hand():
    assert clip_starts(10.0, 3.0) == [0.0, 3.0, 6.0]
    assert clip_starts(2.0, 3.0) == [0.0]  # shorter than one window: one (padded) window
    assert clip_starts(9.0, 3.0) == [0.0, 3.0, 6.0]
    starts = clip_starts(300.0, 3.0, max_clips=20, seed=1)  # AVVA: at most 20 random clips of a long video
    assert len(set(starts)) == 20 and starts == sorted(starts) and all(s % 3 == 0 and s <= 297 for s in starts)
    assert starts == clip_starts(300.0, 3.0, max_clips=20, seed=1) != clip_starts(300.0, 3.0, max_clips=20, seed=2)
    x = np.arange(10, dtype=np.float32)  # 10 samples at sr 2: 5 s
    np.testing.assert_array_equal(segment(x, sr=2, seconds=2.0), [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(segment(x[:3], sr=2, seconds=2.0), [[0, 1, 2, 0]])
    picked = segment(np.arange(100.0), sr=1, seconds=10.0, max_clips=3, seed=0)
    assert picked.shape == (3, 10) and all(row[0] % 10 == 0 and list(row) == list(range(int(row[0]), int(row[0]) + 10))
                                           for row in picked)


# ------------------------------------------------------------------------------------------------------- bad files
def bad_files(tmp_path):
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = tmp_path / "ok.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01garbage" * 50)
    return {"text.wav": load_audio, "empty.jpg": load_image, "cut.png": load_image, "junk.mp4": video_frames,
            "missing.flac": load_audio}


def test_bad_files_raise_input_error_naming_the_file(tmp_path):
    for name, fn in bad_files(tmp_path).items():
        kw = {"n": 2} if fn is video_frames else {}
        with pytest.raises(InputError) as e:
            fn(tmp_path / name, **kw)
        assert e.value.path == str(tmp_path / name) and "\n" not in e.value.format()
        with pytest.raises(InputError):
            probe(tmp_path / name)
    with pytest.raises(InputError, match="cannot open media"):
        load_audio(tmp_path / "junk.mp4")


def cli(*args):
    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args],
                          capture_output=True, text=True)


def test_media_probe_cli(tmp_path):
    p = make_mp4(tmp_path / "c.mp4")
    res = cli("media", "probe", str(p))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == probe(p).to_dict()
    bad_files(tmp_path)
    res = cli("media", "probe", str(tmp_path / "text.wav"))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [f"siftkit: {tmp_path / 'text.wav'}: cannot read audio: "
                                               "Format not recognised."]


# ------------------------------------------------------------------------------------------------------- real files
def test_real_avva_audio_and_images(shared_data):
    root = shared_data / "avva"
    wavs = sorted(root.rglob("*.wav"))
    images = sorted(root.rglob("*.jpg"))
    assert len(wavs) == 8 and len(images) == 13  # SOURCE.md: 8 audio clips, 13 images
    for w in wavs:
        info = probe(w)
        x = load_audio(w)
        assert info.streams[0]["sample_rate"] == 44100 and x.dtype == np.float32
        assert abs(len(x) - info.duration * 16000) <= 1 and np.abs(x).max() > 0.01
    durations = {w.name: round(probe(w).duration, 1) for w in wavs}
    assert durations["dog_audio.wav"] == 2.6 and durations["car_audio.wav"] == 5.0
    assert [round(d, 1) for n, d in durations.items() if "_audio" not in n] == [5.0] * 5  # the ESC-50 clips
    clips = segment(load_audio(root / "imagebind_assets" / "bird_audio.wav"), seconds=3.0)
    assert clips.shape == (1, 48000)  # 5 s: one full 3-s window, the tail dropped
    for im in images:
        img = load_image(im)
        assert img.mode == "RGB" and min(img.size) > 32
