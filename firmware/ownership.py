"""Who owns a file and who we are: what a technician needs to read in a permission problem (never a bare
"Permission denied")."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def current_user() -> str:
    return user_name(os.geteuid())


def ownership(path: Path) -> str:
    """'owned by root:root, mode 0600', or why it cannot be told."""
    try:
        info = path.stat()
    except OSError as error:
        return f"its owner cannot be read: {error.strerror}"
    return f"owned by {user_name(info.st_uid)}:{group_name(info.st_gid)}, mode {stat.S_IMODE(info.st_mode):04o}"
