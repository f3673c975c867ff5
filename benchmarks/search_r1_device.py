"""Part (b) on the lent GPU machine: SmolLM2 + LoRA GRPO, the same cell function as on CPU, bigger batches.

The embedded GGUF (98 MB) travels in two ignored halves (`.dev/a`, `.dev/b`, two calls: the device keeps ignored
files between calls); bm25s and gguf travel as copied pure-Python packages (`.dev/site`). Run there:

    PYTHONPATH=.dev/site python3 -m benchmarks.search_r1_device --out $OUT

and copy ``$OUT/*.json`` into ``benchmarks/results/cells/search_r1_smollm2/``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import time
from pathlib import Path

GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--prompts", type=int, default=8)
    a = ap.parse_args(argv)
    from benchmarks.cells import cell_key
    from benchmarks.search_r1_smollm2 import smollm2_cell
    from siftkit.llm.local import convert_gguf

    gguf = Path("/tmp/smollm2.gguf")
    gguf.write_bytes(Path(".dev/a/part").read_bytes() + Path(".dev/b/part").read_bytes())
    assert hashlib.sha256(gguf.read_bytes()).hexdigest() == GGUF_SHA256
    folder = convert_gguf(gguf, Path("/tmp/smollm2-hf"))
    import torch

    for warm in (True, False):
        params = {"steps": a.steps, "seed": 0, "warm": warm, "device": "cuda", "prompts": a.prompts,
                  "n_eval": 50, "n_entities": 150, "model_path": str(folder), "threads": 8}
        t0 = time.perf_counter()
        metrics = smollm2_cell(params)
        rec = {"experiment": "search_r1_smollm2", "params": params, "metrics": metrics,
               "seconds": round(time.perf_counter() - t0, 3), "device": torch.cuda.get_device_name(0),
               "finished": _dt.datetime.now().isoformat(timespec="seconds")}
        Path(a.out, cell_key({k: params[k] for k in ("steps", "seed", "warm", "device")}) + ".json").write_text(
            json.dumps(rec, indent=2, default=float))


if __name__ == "__main__":
    main()
