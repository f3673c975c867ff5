"""Two gloo processes under torchrun give the same gradients as one process on the whole batch."""

import subprocess
import sys

import pytest
import torch


def _run(out, nproc, method):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "siftkit.cascade.ddp", "--config", "tiny", "--method", method, "--batch-size", "16",
           "--grad-check", "--out", str(out)] if nproc > 1 else [
        sys.executable, "-m", "siftkit.cascade.ddp", "--config", "tiny", "--method", method, "--batch-size", "16",
        "--grad-check", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    return torch.load(out / f"grads_world{nproc}.pt")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lcron"])
def test_ddp_gradients_match_single_process(tmp_path, method):
    one = _run(tmp_path, 1, method)
    two = _run(tmp_path, 2, method)
    assert one.keys() == two.keys() and len(one) > 10
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-6, rtol=1e-4), k
