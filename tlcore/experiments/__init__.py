"""Experiments made of many runs: the data-efficiency curve."""
