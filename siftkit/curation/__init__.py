"""AVVA: LLM-scored audio-video alignment to curate contrastive training data (Vosoughi et al., EUSIPCO 2025,
https://arxiv.org/abs/2503.09205; spec: ../shared/specs/avva.md; docs: docs/avva.md).

* :mod:`~siftkit.curation.judge`: the five-criteria judge prompt, robust JSON parsing, equal-weight mean, threshold
  and retained-fraction selection, the generated-JSON and expected-grade LLM judges, a model-free proxy judge.
* :mod:`~siftkit.curation.evaluate`: the K x N retrieval protocol (top-1/3/10, both directions, mean +- std).
* :mod:`~siftkit.curation.model`: the dual encoder (aligner MLPs, cross-modal attention, pooling) and InfoNCE training.
* :mod:`~siftkit.curation.synthetic`: a procedural audio-visual world with known correspondences.
* :mod:`~siftkit.curation.describe`: describers run on the signals (audio, image; Whisper for speech).
"""
