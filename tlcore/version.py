"""The engine's version, in a module of its own: reports and saved models record it, and importing it must not
import the rest of the engine (``tlcore/__init__`` reaches the API on first use)."""

__version__ = "0.2.0"
