"""xVLM2Vec (Musacchio et al. 2025, arXiv 2503.09313): self-knowledge distillation that makes an English embedding
model multilingual, for text and image+text.

* :mod:`.data`: Tatoeba (vendored, CC BY), XTD10 (read from ../shared), user TSV/JSONL, the split by English
  sentence, the parallel-set builder with drop counts, prompt styles.
* :mod:`.encoder`: raw/normalised embeddings of any trainable :mod:`siftkit.embed` model, the frozen teacher copy.
* :mod:`.train`: the two-term MSE loss (and the image-loss variant), the trainer.
* :mod:`.evaluate`: cross-lingual P@1, MSE to the teacher, English retention, MMMEB jsonl.
"""

from siftkit.multilingual.data import Pair, load_parallel, load_tatoeba, load_xtd10, split_by_english
from siftkit.multilingual.encoder import KDEncoder, kd_encoder
from siftkit.multilingual.evaluate import evaluate_pairs
from siftkit.multilingual.train import DistillConfig, distill, self_kd_loss

__all__ = ["Pair", "load_tatoeba", "load_xtd10", "load_parallel", "split_by_english", "KDEncoder", "kd_encoder",
           "DistillConfig", "distill", "self_kd_loss", "evaluate_pairs"]
