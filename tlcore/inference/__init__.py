"""Predictions from a finished run folder (any task)."""
