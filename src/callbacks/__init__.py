"""Callbacks of our own: only what Lightning's do not already do."""

from src.callbacks.hparams import HParamsSummary

__all__ = ["HParamsSummary"]
