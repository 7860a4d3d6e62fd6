"""Data sets: loading the formats in DESIGN.md, validation, content hashes, stored splits, demos."""

from tlcore.data.dataset import Dataset, Problem
from tlcore.data.loaders import load_dataset

__all__ = ["Dataset", "Problem", "load_dataset"]
