"""LCRON cascade ranking (arXiv 2503.09492): the LCRON loss, seven baselines, DSSM/MLP/DIN stage models,
a RecFlow-shaped simulator, a RecFlow loader, joint-recall evaluation and an N-stage trainer.

Core file: :mod:`siftkit.cascade.loss`. See docs/lcron.md.
"""
