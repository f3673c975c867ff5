"""The self-KD loss (hand values, sentence-transformers' MSELoss), the frozen teacher, a run that learns, LoRA,
and the image+text path on the tiny VLM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siftkit.embed import PatchPrefixEmbedder, make_tiny_vlm
from siftkit.multilingual.data import Pair
from siftkit.multilingual.encoder import kd_encoder
from siftkit.multilingual.train import DistillConfig, distill, image_kd_loss, self_kd_loss


def test_loss_hand_computed():
    s_en = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    s_x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    t_en = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    # MSE(s_en, t): errors 0,1,0,4 -> 5/4; MSE(s_x, t): 1,1,1,1 -> 1; loss = (1.25 + 1) / 2
    assert self_kd_loss(s_en, s_x, t_en).item() == pytest.approx(1.125)
    o = torch.zeros(2, 2)
    # image variant: (1.25 + 1 + 0 + MSE(ones, zeros) = 1) / 4
    assert image_kd_loss(s_en, s_x, t_en, o, torch.ones(2, 2), o).item() == pytest.approx(3.25 / 4)


def test_loss_equals_sentence_transformers_mse_on_two_columns():
    from sentence_transformers.losses import MSELoss

    st = kd_encoder("minilm", target="normalized")
    st.module.eval()
    en, x = ["The cat sleeps.", "I like tea."], ["Die Katze schläft.", "Ich mag Tee."]
    t_en = torch.randn(2, st.dim, generator=torch.Generator().manual_seed(0))
    feats = [{k: v for k, v in st.module.tokenize(col).items()} for col in (en, x)]
    theirs = MSELoss(st.module)(feats, t_en)
    ours = self_kd_loss(st.train_embed(en), st.train_embed(x), t_en)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


@pytest.fixture(scope="module")
def vlm_path(tmp_path_factory):
    return make_tiny_vlm(tmp_path_factory.mktemp("ml") / "vlm")


def _pairs(n=16):
    words = ["cat", "dog", "tree", "house", "car", "bird", "fish", "book"]
    return [Pair(f"a {words[i % 8]} number {i}", f"un {words[(i * 3) % 8]} numero {i}", "it") for i in range(n)]


def test_teacher_frozen_and_tiny_run_lowers_loss(vlm_path):
    student = kd_encoder(vlm_path)
    before = {k: v.clone() for k, v in student.module.state_dict().items()}
    pairs = _pairs()
    res = distill(student, pairs * 8, DistillConfig(lr=1e-3, batch_size=16, seed=0), progress=False)
    for k, v in res.teacher.module.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not p.requires_grad for p in res.teacher.module.parameters())
    changed = any(not torch.equal(v, before[k]) for k, v in student.module.state_dict().items())
    assert changed
    assert np.mean(res.losses[-2:]) < 0.85 * np.mean(res.losses[:2])
    assert res.losses[0] > 0


def test_image_loss_variant_end_to_end(vlm_path, tmp_path):
    from PIL import Image

    imgs = []
    for i, c in enumerate([(255, 0, 0), (0, 0, 255)]):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 32), c).save(p)
        imgs.append(str(p))
    pairs = [Pair(q.en, q.x, q.lang, imgs[i % 2]) for i, q in enumerate(_pairs())]
    student = kd_encoder(vlm_path)
    res = distill(student, pairs * 6, DistillConfig(lr=1e-3, batch_size=16, image_loss=True), progress=False)
    assert np.mean(res.losses[-2:]) < np.mean(res.losses[:2])
    out = student.save(tmp_path / "student")
    again = PatchPrefixEmbedder.from_pretrained(out)
    E = again.encode([p.x for p in pairs[:4]], [p.image for p in pairs[:4]])
    F_ = student.encode([p.x for p in pairs[:4]], [p.image for p in pairs[:4]])
    np.testing.assert_allclose(E, F_, atol=1e-5)


def test_lora_trains_adapters_only(vlm_path):
    student = kd_encoder(vlm_path)
    res = distill(student, _pairs() * 4, DistillConfig(lr=1e-2, batch_size=16, lora=True), progress=False)
    assert student.lora and len(res.losses) == 4
    names = [n for n, p in student.module.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


def test_right_padded_last_token_pooling(vlm_path):
    enc = kd_encoder(vlm_path)
    alone = enc.encode(["a short one"])
    batch = enc.encode(["a short one", "a much longer text that forces right padding of the first row"])
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-5)


def test_spec_defaults_full_fine_tuning_cosine_schedule_and_clip(vlm_path, monkeypatch):
    """The defaults are the spec's recipe (full fine-tuning, AdamW lr 1e-5, weight decay 0, no warm-up, cosine to 0,
    gradient-norm clip 0.3), observed in a run: the lr of every step, the clip threshold, every weight trainable."""
    cfg = DistillConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.warmup_ratio, cfg.max_grad_norm, cfg.lora) == (1e-5, 0.0, 0.0, 0.3, False)
    lrs, clips, decays = [], [], []
    step, clip = torch.optim.AdamW.step, torch.nn.utils.clip_grad_norm_

    def record_step(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        decays.append(self.param_groups[0]["weight_decay"])
        return step(self, *a, **k)

    def record_clip(params, max_norm, *a, **k):
        clips.append(max_norm)
        return clip(params, max_norm, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", record_step)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", record_clip)
    student = kd_encoder(vlm_path)
    n_params = sum(p.numel() for p in student.module.parameters())
    distill(student, _pairs(16), DistillConfig(batch_size=4, seed=0), progress=False)  # 4 steps
    assert sum(p.numel() for p in student.module.parameters() if p.requires_grad) == n_params
    # cosine without warm-up over 4 steps: lr · ½(1 + cos(π s / 4)), s = 0..3
    assert lrs == pytest.approx([1e-5 * 0.5 * (1 + np.cos(np.pi * s / 4)) for s in range(4)])
    assert clips == [0.3] * 4 and decays == [0.0] * 4


def test_each_side_is_its_own_forward_and_teacher_targets_keep_pair_order(vlm_path, monkeypatch):
    """A training step embeds the English side and the translated side in two passes (each padded to its own longest
    sentence); the teacher's targets, computed longest first in batches, come back in pair order (row i = T(en_i))."""
    from siftkit.multilingual.train import teacher_targets

    student = kd_encoder(vlm_path)
    pairs = _pairs(8)
    pairs = [Pair(p.en + " and more" * (i % 3), p.x, p.lang) for i, p in enumerate(pairs)]  # unequal lengths
    teacher = student.frozen_copy()
    got = teacher_targets(teacher, pairs, False, batch_size=3)
    with torch.no_grad():
        one_by_one = torch.cat([teacher.train_embed([p.en]) for p in pairs])
    torch.testing.assert_close(got, one_by_one, atol=1e-5, rtol=1e-5)

    calls = []
    embed = type(student).train_embed

    def record(self, texts, images=None):
        if self is student:
            calls.append(list(texts))
        return embed(self, texts, images)

    monkeypatch.setattr(type(student), "train_embed", record)
    distill(student, pairs, DistillConfig(batch_size=4, seed=0), teacher=teacher, progress=False)
    ens, xs = {p.en for p in pairs}, {p.x for p in pairs}
    assert len(calls) == 4  # 2 steps × 2 sides
    assert all(set(c) <= ens for c in calls[0::2]) and all(set(c) <= xs for c in calls[1::2])
    assert all(len(c) == 4 for c in calls)


@pytest.mark.parametrize("field,value", [("lr", 0.0), ("lr", float("nan")), ("epochs", 0), ("batch_size", 0),
                                         ("lora_r", 0), ("max_grad_norm", -1.0), ("warmup_ratio", 1.0),
                                         ("weight_decay", -0.1), ("max_steps", 0)])
def test_bad_config_value_is_one_input_error_naming_the_option(field, value):
    from siftkit.core.errors import InputError

    with pytest.raises(InputError) as e:
        DistillConfig(**{field: value}).check()
    option = "--" + field.replace("_", "-")
    assert e.value.field == option
    assert "\n" not in str(e.value) and "must be" in str(e.value)


def test_encode_sorts_by_length_and_returns_rows_in_input_order(vlm_path):
    enc = kd_encoder(vlm_path)
    texts = ["b", "a much longer text here", "mid length", "a very very much longer text than every other one", "x"]
    got = enc.encode(texts, batch_size=2)
    one_by_one = np.concatenate([enc.encode([t]) for t in texts])
    np.testing.assert_allclose(got, one_by_one, atol=1e-5)


def test_group_by_length_is_transformers_length_grouped_order(monkeypatch):
    """Our length-grouped epoch order equals transformers' get_length_grouped_indices fed the same shuffle."""
    import random

    from transformers.trainer_pt_utils import get_length_grouped_indices

    from siftkit.multilingual.train import _batches, _length

    rng = random.Random(3)
    pairs = [Pair("e" * rng.randint(1, 60), "x" * rng.randint(1, 60), "it") for _ in range(203)]
    size, seed = 8, 5
    perm = list(range(len(pairs)))
    random.Random(seed).shuffle(perm)
    monkeypatch.setattr(torch, "randperm", lambda n, generator=None: torch.tensor(perm))
    ref = get_length_grouped_indices([_length(p) for p in pairs], size)
    ours = [id(p) for b in _batches(pairs, size, seed) for p in b]
    assert ours == [id(pairs[i]) for i in ref]
    assert [len(b) for b in _batches(pairs, size, seed)] == [8] * 25 + [3]
    plain = [id(p) for b in _batches(pairs, size, seed, by_length=False) for p in b]
    assert plain == [id(pairs[i]) for i in perm]


def test_fused_adamw_matches_the_plain_update():
    from siftkit.multilingual.train import adamw

    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(2)]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_a, opt_b = adamw(a, 1e-2, 0.01), torch.optim.AdamW(b, lr=1e-2, weight_decay=0.01)
    assert opt_a.defaults["fused"] is True
    for step in range(3):
        g = [torch.randn(5, 3) for _ in a]
        for p, q, gi in zip(a, b, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
