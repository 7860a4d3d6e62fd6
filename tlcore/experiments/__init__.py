"""Experiments made of many runs: the data-efficiency curve, and checking a backbone ranking by fine-tuning."""
