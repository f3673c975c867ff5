"""``accelerate`` support of the trainer: the shard of a global batch, a one-process ``accelerate launch`` run on
the CPU that equals the plain run, and two gloo processes whose averaged gradients reproduce the one-process
full-batch run (same weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from siftkit.embed import PatchPrefixEmbedder, make_tiny_vlm
from siftkit.multilingual.data import Pair
from siftkit.multilingual.encoder import kd_encoder
from siftkit.multilingual.train import DistillConfig, _shard, distill

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import sys, torch
from accelerate import Accelerator
from siftkit.multilingual.data import Pair
from siftkit.multilingual.encoder import kd_encoder
from siftkit.multilingual.train import DistillConfig, distill
torch.set_num_threads(1)
acc = Accelerator(cpu=True)
pairs = [Pair(f"a cat number {i}", f"un gatto numero {i}", "it") for i in range(16)]
student = kd_encoder(sys.argv[1])
res = distill(student, pairs, DistillConfig(lr=1e-3, batch_size=4, seed=0, epochs=2), progress=False,
              accelerator=acc)
if acc.is_main_process:
    torch.save({"state": student.module.state_dict(), "losses": res.losses, "world": acc.num_processes}, sys.argv[2])
"""


def _pairs():
    return [Pair(f"a cat number {i}", f"un gatto numero {i}", "it") for i in range(16)]


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    return make_tiny_vlm(tmp_path_factory.mktemp("acc") / "vlm")


def test_shard_covers_the_batch_in_order():
    batch = list(range(10))
    parts = [_shard(batch, 3, r) for r in range(3)]
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [_shard(list(range(8)), 2, r) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1"}


def test_two_processes_average_gradients_like_one_full_batch(vlm, tmp_path):
    script, out = tmp_path / "worker.py", tmp_path / "two.pt"
    script.write_text(WORKER)
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", str(script), str(vlm), str(out)],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    two = torch.load(out, weights_only=False)
    assert two["world"] == 2
    one = kd_encoder(vlm)  # one process, global batch 8 = 2 × 4
    ref = distill(one, _pairs(), DistillConfig(lr=1e-3, batch_size=8, seed=0, epochs=2), progress=False)
    assert len(two["losses"]) == len(ref.losses) == 4
    for a, b in zip(two["losses"], ref.losses):
        assert a == pytest.approx(b, rel=1e-4)
    start = PatchPrefixEmbedder.from_pretrained(vlm).state_dict()
    for k, v in one.module.state_dict().items():
        torch.testing.assert_close(two["state"][k], v, atol=2e-5, rtol=1e-4)
    assert any(not torch.equal(start[k], v) for k, v in one.module.state_dict().items())


def test_accelerate_launch_cpu_one_process_equals_plain_run(vlm, tmp_path):
    data = tmp_path / "p.tsv"
    data.write_text("".join(f"{p.en}\t{p.x}\tit\n" for p in _pairs()))
    out = tmp_path / "run"
    launcher = Path(sys.executable).parent / "accelerate"
    res = subprocess.run([str(launcher), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "siftkit.cli", "multilingual",
                          "distill", "--model", str(vlm), "--data", str(data), "--langs", "it", "--batch-size", "8",
                          "--lr", "1e-3", "--seed", "0", "--threads", "1", "--output", str(out)],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    train = json.loads((out / "train.json").read_text())
    assert train["processes"] == 1 and train["steps"] == 2
    torch.set_num_threads(1)
    plain = kd_encoder(vlm)
    ref = distill(plain, _pairs(), DistillConfig(lr=1e-3, batch_size=8, seed=0), progress=False)
    assert train["losses"] == pytest.approx(ref.losses, rel=1e-4)
    got = PatchPrefixEmbedder.from_pretrained(out / "model").state_dict()
    for k, v in plain.module.state_dict().items():
        torch.testing.assert_close(got[k], v, atol=2e-5, rtol=1e-4)


def test_fp16_is_refused(monkeypatch):
    from siftkit.core.errors import InputError
    from siftkit.multilingual.plugin import _accelerator

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert _accelerator() is None  # a plain run
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(InputError, match="bf16"):
        _accelerator()
