"""The manual-backprop network: every gradient written out, proven equal to autograd in tests/manual."""

from src.manual.cnn import ManualCNN
from src.manual.mlp import ManualMLP
from src.manual.module import ManualClassifier
from src.manual.optim import ManualSGD

__all__ = ["ManualMLP", "ManualCNN", "ManualClassifier", "ManualSGD"]
