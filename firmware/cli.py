"""The `sitegate` command: what technicians and foremen type over SSH.

Readable tables by default, --json for scripts; exit 0 when all is well, 1 on a warning, 2 on a critical
problem (monitoring reads these). The commands are in `sitegate.commands`; this is where their answer is printed
and their errors become a message and an exit code.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from sitegate.commands import build_parser, handler
from sitegate.errors import SitegateError
from sitegate.output import CRITICAL, PIPE_CLOSED, Report, emit


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result = handler(args.handler)(args)
        code = emit(result, getattr(args, "json", False)) if isinstance(result, Report) else result
        sys.stdout.flush()  # a reader gone away shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # `sitegate remarks | head`: the reader took what it wanted; nothing more to say, and no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    except SitegateError as error:
        print(f"error: {error.problem}", file=sys.stderr)
        if error.fix:
            print(f"fix: {error.fix}", file=sys.stderr)
        return CRITICAL
    except sqlite3.DatabaseError as error:
        print(f"error: the database cannot be used: {error}", file=sys.stderr)
        print("fix: check the disk (`df`, `dmesg`), then `sitegate verify`; keep the file as evidence", file=sys.stderr)
        return CRITICAL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
