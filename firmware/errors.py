"""The small exception hierarchy: every error says what is wrong and what a technician can do about it."""


class SitegateError(Exception):
    """Base of every error sitegate raises on purpose.

    `problem` says what is wrong, `fix` what to do about it; str() gives both, so a log line or a
    terminal message is actionable on its own.
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — fix: {fix}" if fix else problem)


class ConfigError(SitegateError):
    """The configuration file is missing, unreadable or invalid (every problem is listed at once)."""

    def __init__(self, problems: list, source: str) -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source}: {len(problems)} configuration problem(s):\n{lines}",
            "edit the file and run `sitegate config check` until it reports no problem",
        )


class IdentifierError(SitegateError, ValueError):
    """A national register, BIS, Limosa, enterprise or works-declaration number is not valid."""


class RosterError(SitegateError):
    """The roster file cannot be imported as it is."""


class StorageError(SitegateError):
    """The registration log cannot be read or written."""


class DeviceKeyError(StorageError):
    """The device key is missing, unreadable or not the key the log continues under: nothing can be signed."""


class DiskFullError(StorageError):
    """No room left for new records: new badges are refused, nothing stored is lost."""


class DuplicateRegistrationError(StorageError):
    """A registration identical on the five fields of remark 14 is already stored."""


class VerificationError(SitegateError):
    """The signed log or an export does not verify: it was altered, truncated or signed by another key."""

    def __init__(self, seq: int | None, problem: str) -> None:
        self.seq = seq
        where = f"record {seq}" if seq is not None else "log"
        super().__init__(
            f"{where}: {problem}",
            "keep the database and any export as evidence; do not delete it; report it to the site manager",
        )


class OutputFileError(SitegateError):
    """A file a person asked for (`--out`) cannot be written there; nothing was written."""
