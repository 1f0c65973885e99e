"""Predicting how well architectures train without training them fully: zero-cost proxies
and a GNN pairwise-ranking predictor over ArchGraphs (RANK-NOSH, Wang's thesis ch. 4)."""
