"""Callbacks of our own: only what Lightning's do not already do."""

from src.callbacks.checkpoint import ModelCheckpoint
from src.callbacks.finite import StopOnNonFiniteLoss
from src.callbacks.gradnorm import GradNorms
from src.callbacks.hparams import HParamsSummary
from src.callbacks.interrupt import CheckpointOnInterrupt
from src.callbacks.predictions import PredictionWriter
from src.callbacks.progress import ProgressBar
from src.callbacks.report import TestReport

__all__ = [
    "ModelCheckpoint",
    "GradNorms",
    "HParamsSummary",
    "CheckpointOnInterrupt",
    "PredictionWriter",
    "ProgressBar",
    "StopOnNonFiniteLoss",
    "TestReport",
]
