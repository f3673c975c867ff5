"""siftkit: nine search, ranking and recommendation systems on one shared core."""

__version__ = "0.1.0"
