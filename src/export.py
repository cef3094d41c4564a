"""Export a trained model to ONNX or TorchScript, with its input normalization inside (the model's first layer).

    python -m src.export --config configs/<name>.yaml [--ckpt_path best|last|FILE] --format onnx|torchscript
        [--key value ...]
    python -m src.export --config <run>/config.yaml --format onnx      (that run's best checkpoint)

Further --key value pairs are the CLI's own overrides (for example --trainer.logger.init_args.save_dir, where
best/last are looked up, or --data.init_args.data_dir, where the test images come from).

The exported model takes images in [0, 1] (float32 [N, C, H, W], any N) and returns logits [N, classes]. It is
written beside the run (<run>/export/<checkpoint name>.onnx or .pt; beside the file for a checkpoint outside a
run), run once on real test images against the PyTorch model, and the largest absolute logit difference is
printed with the file's path. The manual-backprop nets export as their nn.Module twins (to_module(): the same
weights in nn.Linear/nn.Conv2d layers), so the check compares the exported file with the hand-written forward.
"""

import argparse
import re
from pathlib import Path

import torch
from torch import nn

from src.errors import ArgumentParser, UsageError, one_line_exit
from src.models.wrap import FlipMean
from src.run.layout import export_folder, load_checkpoint

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def write(module: nn.Module, example: torch.Tensor, path: Path, fmt: str):
    """Writes module to path and returns a function that runs the written file (onnxruntime, torch.jit.load)."""
    if fmt == "torchscript":
        torch.jit.trace(module, example).save(str(path))
        loaded = torch.jit.load(str(path))
        return lambda x: loaded(x)
    import onnxruntime  # the exporter and the runtime only when asked for: they take seconds to import

    batch = torch.export.Dim("batch")
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=True,
        external_data=False,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])


def export(model, images: torch.Tensor, ckpt: Path, fmt: str) -> tuple[Path, float]:
    """model: an ImageClassifier with its checkpoint loaded; images: uint8 [N, C, H, W] test images.
    -> (the written file, max |exported logits - PyTorch logits| on images)."""
    net = model.net.to_module() if hasattr(model.net, "to_module") else model.net
    module = nn.Sequential(model.normalize, net)  # the normalization is the model's first layer
    module = (
        FlipMean(module) if model.eval_flip else module
    ).eval()  # mirroring commutes with a per-channel normalization
    x = images.float() / 255.0
    with torch.no_grad():
        reference = model.eval()(x)
    path = export_folder(ckpt) / (ckpt.stem + FORMATS[fmt])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        exported = write(module, x[:2], path, fmt)
        with torch.no_grad():
            difference = (exported(x) - reference).abs().max().item()
    except (RuntimeError, TypeError, ValueError, torch.onnx.errors.OnnxExporterError) as err:
        path.unlink(missing_ok=True)
        reason = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(err)).split())[:200]  # without the exporter's colour codes
        raise UsageError(f"cannot export {type(model.net).__name__} to {fmt} ({type(err).__name__}: {reason})") from err
    return path, difference


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """-> (this command's arguments, the rest: overrides for the CLI's parser, which rejects unknown keys)."""
    parser = ArgumentParser(
        prog="python -m src.export",
        description=__doc__,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", action="append", required=True, help="the config(s) the model was trained with")
    parser.add_argument("--ckpt_path", default="best", help="best or last (of the config's newest run) or a .ckpt file")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument("--images", type=int, default=256, help="real test images the check runs on")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> Path:
    from src.cli import main as cli_main  # Lightning and the configs: after the arguments are known to be good

    with one_line_exit():
        args, overrides = parse(argv)
        cli = cli_main([arg for config in args.config for arg in ("--config", config)] + overrides, run=False)
        ckpt = cli.choice.find(args.ckpt_path)
        cli.model.restore(load_checkpoint(ckpt))
        images = cli.datamodule.read_split(train=False)[0][: args.images]
        path, difference = export(cli.model, images, ckpt, args.format)
    print(
        f"exported {ckpt} to {path}\n"
        f"max |logit difference| against PyTorch on {len(images)} test images: {difference:.2e}"
    )
    return path


if __name__ == "__main__":
    main()
