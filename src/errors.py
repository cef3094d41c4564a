"""Bad input: the one exception type for what a user can fix, how it is said (one line), and what a
command's config must be before anything is built from it: every --config file a YAML mapping, a net class that takes
the data set's in_shape and num_classes."""

import argparse
import errno
import importlib
import inspect
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from jsonargparse import Namespace

from src.frameworks import parser_key


class UsageError(ValueError):
    """Bad input (a path, a config value, a missing run). The commands print its message as one line on stderr and
    exit with status 2, so the message must say what is wrong and what to do about it."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the commands that are not LightningCLI (src.export, src.sweep): a bad argument is a UsageError,
    one line, instead of argparse's usage text."""

    def error(self, message: str):
        raise UsageError(f"{message} (python -m {self.prog.removeprefix('python -m ')} --help)")


def one_line(message: str) -> str:
    """The gist of a possibly nested jsonargparse message, e.g. 'model.net: Option 'hiden' is not accepted':
    the chain of parser keys down to the first line that says what is wrong."""
    keys: list[str] = []
    for line in message.strip().splitlines():
        text = line.strip().removeprefix("- ")
        key = parser_key(text)
        if key:
            keys.append(key[0])
            text = key[1]
        if text and not text.startswith(("Does not validate", "Subtypes:", "Errors:", "Problem with given class_path")):
            return f"{'.'.join(keys)}: {text}" if keys else text
    return message.strip().splitlines()[0] if message.strip() else "invalid input"


# What a user's machine, not this code, is at fault for when a file cannot be written: a read-only, full or foreign
# folder. Each is one line naming the path; any other OSError is a bug and keeps its traceback.
DISK_ERRNOS = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM)


def disk_error(err: OSError) -> str:
    """The one line for an OSError of DISK_ERRNOS, naming its file; any other OSError is raised again (a bug)."""
    if err.errno not in DISK_ERRNOS:
        raise err
    if isinstance(err.filename, bytes):  # TensorBoard's event writer names its file in bytes
        err.filename = os.fsdecode(err.filename)
    where = f"{err.filename}: " if err.filename else ""
    return (
        f"{where}{os.strerror(err.errno)}; make it writable or free space, or write elsewhere "
        "(--trainer.logger.init_args.save_dir for runs, TMPDIR for temporary files)"
    )


@contextmanager
def one_line_exit():
    """Every command's ending for what its user can fix: a UsageError, or an OSError of DISK_ERRNOS, printed as one
    line on stderr, exit status 2. Any other exception is a bug and keeps its traceback."""
    try:
        yield
    except UsageError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a read-only or full folder: the machine's fault, not a bug
        print(f"error: {disk_error(err)}", file=sys.stderr)
        sys.exit(2)


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
    error): jsonargparse would say "Unexpected config" for an empty file, or raise UnicodeDecodeError for a binary
    one."""
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
