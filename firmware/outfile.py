"""Files written where a person asked (`--out`): never over the device's own data, whole or not at all.

The command runs as the daemon's user (the sudoers rule), which owns the signed log: a mistyped `--out` must not
destroy the database, the key or the head file. A path inside the data directory (symlinks resolved) and anything
that is not a regular file (a folder, a device, a FIFO) are refused; the file is written beside its target and
renamed into place, so the target holds its old content or the new one, never half. An OSError becomes an
OutputFileError saying what to do, not a traceback.

An export or a listing holds every worker's full NISS: the file is readable by its owner (the daemon's user) and its
group only, whatever the umask. The technicians' command runs with the admin group as its group
(systemd/sitegate-command.sh), so the technician who asked reads it and other local users do not.
"""

from __future__ import annotations

import os
import pwd
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from sitegate.errors import OutputFileError

NEW_FILE_MODE = 0o640  # the owner and the admin group: full personal numbers, never for any local user


def _cannot_write(path: Path, error: OSError) -> OutputFileError:
    user = pwd.getpwuid(os.geteuid()).pw_name
    return OutputFileError(
        f"cannot write {path}: {error.strerror or error}", f"use a folder the {user} user can write, such as /tmp"
    )


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _refuse_data_dir(path: Path, real: Path, data: Path) -> None:
    if _inside(real, data):
        raise OutputFileError(
            f"{path} is inside the data directory {data} (the signed log, the device key, the head file): "
            "nothing was written",
            f"write it elsewhere, such as /tmp/{Path(path).name or 'sitegate-out'}",
        )


def check(path: Path, data_dir: Path) -> Path:
    """The target's real path; OutputFileError when it is inside `data_dir` or is there and not a regular file."""
    target, data = Path(path).resolve(), Path(data_dir).resolve()
    _refuse_data_dir(path, target, data)
    try:
        found = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as error:
        raise _cannot_write(path, error) from None
    if not stat.S_ISREG(found.st_mode):
        kind = "a folder" if stat.S_ISDIR(found.st_mode) else "not a regular file (a device, a FIFO or a socket)"
        raise OutputFileError(f"{path} is {kind}: nothing was written", "name a new file, or a regular file to replace")
    return target


@contextmanager
def replacing(path: Path, data_dir: Path, text: bool = False) -> Iterator[IO]:
    """A handle on a new file beside `path`, renamed over it once written and on disk. On an error the new file is
    removed and `path` is left as it was. text: a UTF-8 text handle, else binary."""
    target, data = check(path, data_dir), Path(data_dir).resolve()
    try:
        folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        # The folder held open is the one written to: it must still be outside the data directory (not swapped).
        _refuse_data_dir(path, Path(os.readlink(f"/proc/self/fd/{folder}")), data)
        partial = f".{target.name}.{secrets.token_hex(4)}.new"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            descriptor = os.open(partial, flags, NEW_FILE_MODE, dir_fd=folder)
        except OSError as error:
            raise _cannot_write(path, error) from None
        try:
            with os.fdopen(descriptor, "w" if text else "wb", encoding="utf-8" if text else None) as handle:
                os.fchmod(descriptor, NEW_FILE_MODE)  # the umask only takes away: a 077 one would lock the group out
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException as error:
            try:
                os.unlink(partial, dir_fd=folder)
            except FileNotFoundError:
                pass
            if isinstance(error, OSError):
                raise _cannot_write(path, error) from None
            raise
        with suppress(OSError):  # the rename on disk too; a folder that cannot be synced (some FUSE) still has it
            os.fsync(folder)
    finally:
        os.close(folder)


def write_bytes(path: Path, content: bytes, data_dir: Path) -> None:
    """`content` into `path`, as `replacing` writes it."""
    with replacing(path, data_dir) as handle:
        handle.write(content)
