"""Backbones: one module per family, registered by name in :mod:`tlcore.models.registry`."""
