"""What a command's config must be before anything is built from it, each said in one line where it is not: every
--config file a YAML mapping, and a net class that takes the data set's in_shape and num_classes; and the class a
config's class_path names."""

import importlib
import inspect
from pathlib import Path

from jsonargparse import Namespace

from src.errors import UsageError


def import_class(class_path) -> type | None:
    """The class a config's class_path names, or None where it cannot be imported."""
    module, _, name = str(class_path or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def check_net_takes_data_shape(config: Namespace) -> None:
    """The data module hands in_shape and num_classes to the net (add_arguments_to_parser): a net class must take both
    (whether their values fit the data is ImageClassifier.setup's check)."""
    net = config.get("model.init_args.net")
    cls = import_class(net.get("class_path")) if isinstance(net, Namespace) else None
    if cls is None:
        return
    parameters = inspect.signature(cls).parameters
    missing = [k for k in ("in_shape", "num_classes") if k not in parameters]
    if missing:
        raise UsageError(
            f"{net.class_path} must take {' and '.join(missing)} as __init__ arguments: the command line "
            "hands the data module's to the net"
        )


def check_config_files(args: list[str]) -> None:
    """Each --config file that exists is a YAML mapping, or a one-line error naming it (and the line of a syntax
    error): jsonargparse would say "Unexpected config" for an empty file, or raise UnicodeDecodeError for a binary one."""
    import yaml

    files = [b for a, b in zip(args, args[1:]) if a == "--config"] + [a[9:] for a in args if a.startswith("--config=")]
    for file in map(Path, files):
        if not file.is_file():
            continue  # jsonargparse's own "File does not exist" names it
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise UsageError(
                f"{file} is not a text file; --config takes a YAML file such as configs/mnist_mlp.yaml"
            ) from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise UsageError(f"{file}{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
        if not isinstance(data, dict):
            raise UsageError(
                f"{file} holds {'nothing' if data is None else 'a ' + type(data).__name__ + ', not a mapping'}; a "
                "config maps keys to values, e.g. trainer: {max_epochs: 3} (see configs/mnist_mlp.yaml)"
            )
