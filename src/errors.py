"""Bad input: the one exception type for what a user can fix, and how it is said (one line)."""

import argparse
import errno
import os
import re
import sys
from contextlib import contextmanager


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
        key = re.match(r'Parser key "([^"]+)":\s*(.*)', text)
        if key:
            keys.append(key.group(1))
            text = key.group(2)
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
