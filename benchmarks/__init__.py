"""siftkit benchmarks: experiments as grids of cells; results under benchmarks/results/."""
