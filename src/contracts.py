"""What this template asks of the classes a config names, stated once. Required is what every command calls;
each optional extra is looked up in one place (src/models/classifier.py's `adopt`, the test report, export) and a
command that misses one says so in one line rather than switching a feature off in silence.

Net (any nn.Module a config names under model.init_args.net):
    required  __init__(in_shape, num_classes, ...): the data module's, handed over when both are built
              forward(x [N, C, H, W] in normalized units) -> logits [N, num_classes]
    optional  filters() -> [F, C, k, k]: the test report draws the first layer (else it finds a first Linear/Conv)
              to_module() -> nn.Module: what export writes (the manual nets give their autograd twin)

ManualNet (ManualClassifier's net): a Net with its gradients written out
    required  params: nn.ParameterDict, the tensors the optimizer steps
              forward_backward(x, y) -> (scores [N, classes], loss, {name: gradient of loss for params[name]})

DataModule (any LightningDataModule a config names under data):
    required  in_shape (C, H, W), num_classes, train/val dataloaders (test/predict for those commands)
    optional  classes: names for the report and predictions (else the digits 0..num_classes-1)
              mean, std: per-channel input statistics, learnt into the model's Normalize (else raw pixels, said once)
              inference_meta(): what predict_images needs to bring a user's image to the input (else it refuses)
              folder: where its files are, for provenance md5s
"""

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ManualNet(Protocol):
    params: nn.ParameterDict

    def forward_backward(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]: ...


def class_names(datamodule) -> list[str]:
    """A data module's class names (its optional `classes`), else the digits 0..num_classes-1."""
    names = getattr(datamodule, "classes", None)
    return list(names) if names else [str(i) for i in range(datamodule.num_classes)]


def predict_files(datamodule) -> list:
    """The files a data module's predict set was read from (its optional `predict_files`), else none."""
    return list(getattr(datamodule, "predict_files", None) or [])
