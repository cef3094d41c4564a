"""Plain nn.Module networks and the one LightningModule that trains them."""

from src.models.activations import ImprovedSigmoid, make_activation
from src.models.classifier import ImageClassifier
from src.models.cnn import ConvBlock, SmallCNN
from src.models.mlp import MLP

__all__ = ["ConvBlock", "ImprovedSigmoid", "make_activation", "ImageClassifier", "SmallCNN", "MLP"]
