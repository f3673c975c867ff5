import numpy as np
import pytest

from siftkit.curation.describe import (DinoImageEncoder, SignalAudioDescriber, SignalImageDescriber, audio_tokens,
                                       image_tokens, make_tiny_dinov2)
from siftkit.curation.judge import caption_overlap_scores
from siftkit.curation.synthetic import SHAPES, generate, render_image, visual_signature
from siftkit.metrics import roc_auc


def test_audio_describer_reads_the_signal():
    sr = 8000
    t = np.arange(sr * 2) / sr
    gate = (np.sin(2 * np.pi * 4 * t) > 0).astype(float)
    d = SignalAudioDescriber({440.0: "a cat meowing", 1800.0: "a bird chirping"}).describe(
        0.5 * gate * np.sin(2 * np.pi * 1760 * t), sr)
    assert d.dominant_hz == pytest.approx(1760, abs=2) and d.pulse_hz == pytest.approx(4, abs=0.6)
    assert d.source == "a bird chirping" and d.caption.startswith("a bird chirping;") and "high-pitched" in d.caption
    noise = SignalAudioDescriber().describe(np.random.default_rng(0).normal(0, 0.01, sr), sr)
    assert "noisy" in noise.caption and "quiet" in noise.caption


def test_image_describer_shapes_and_colours():
    rng = np.random.default_rng(0)
    for c in range(16):
        colour, shape = visual_signature(c)
        d = SignalImageDescriber().describe(render_image(c, 0.8, 0.5, rng, colour_sd=0.0, noise_sd=0.0))
        assert (d.colour, d.shape) == (colour, shape)


def test_generator_and_describers():
    s = generate(160, rho=0.25, seed=3)
    assert len(s) == 160 and (~s.aligned).sum() == 40
    assert (s.audio_class[s.aligned] == s.video_class[s.aligned]).all()
    assert (s.audio_class[~s.aligned] != s.video_class[~s.aligned]).all()
    assert s.audio.shape == (160, 8, 32) and s.video.shape == (160, 16, 192)
    err = s.describer_error()
    assert err["audio_describer_error"] < 0.1 and err["video_describer_error"] < 0.1
    f = [caption_overlap_scores(a, v).final for a, v in zip(s.audio_caption, s.video_caption)]
    assert roc_auc(s.aligned.astype(int), f) > 0.85
    again = generate(160, rho=0.25, seed=3)
    assert again.audio_caption == s.audio_caption and np.array_equal(again.video, s.video)


def test_feature_shapes():
    assert audio_tokens(np.zeros(8000), 8000).shape == (8, 32)
    assert image_tokens(np.zeros((64, 48, 3), np.uint8)).shape == (16, 192)


def test_dinov2_loading_path_tiny_random(tmp_path):
    path = make_tiny_dinov2(tmp_path / "dino")
    enc = DinoImageEncoder(path)
    rng = np.random.default_rng(0)
    out = enc.encode([rng.random((40, 40, 3)), rng.random((32, 32, 3))])
    assert out.shape == (2, 16, 32) and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])
