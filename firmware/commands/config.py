"""The configuration: check it (every problem at once), print a commented example."""

from __future__ import annotations

from pathlib import Path

from sitegate import commissioning
from sitegate import config as configuration
from sitegate.clock import SYSTEM
from sitegate.errors import ConfigError
from sitegate.output import OK, Report, severity
from sitegate.service.online import ChannelCheck, check_channels
from sitegate.settings import Problem


def check(args) -> Report:
    try:
        config = configuration.load(args.config)
        problems = [
            *config.warnings,
            *commissioning.placeholder_problems(config),
            *commissioning.credential_problems(config.service, SYSTEM.now()),
        ]
    except ConfigError as error:
        config, problems = None, error.problems
    online = args.online and config is not None and not any(p.severity == "error" for p in problems)
    checks: list[ChannelCheck] = []
    if online:
        checks = check_channels(config, SYSTEM)
    problems += [Problem(c.setting, f"{c.label}: {c.detail}", c.fix) for c in checks if not c.ok]
    errors = [p for p in problems if p.severity == "error"]
    lines = [f"{problem.severity.upper():8} {problem}" for problem in problems]
    lines.append(
        "configuration has errors" if errors else "configuration OK" + (" (with warnings)" if problems else "")
    )
    if online and not errors:
        lines += [f"{check.label}: {check.detail}" for check in checks]
    not_run = "fix the errors above first" if args.online and not online else None
    if not_run:  # asked for, not done: say so rather than let silence pass for a token obtained
        lines.append(f"online check not run: {not_run}")
    data = {
        "ok": not errors,
        "online": online and not errors,
        "channels": [{"channel": c.channel, "ok": c.ok, "detail": c.detail} for c in checks],
        **({"online_not_run": not_run} if not_run else {}),
        "source": str(configuration.config_path(args.config)),
        "problems": [p.__dict__ for p in problems],
    }
    return Report(data, "\n".join(lines), severity(errors, problems))


def example(args) -> int:
    print(configuration.example_text(Path(args.data_dir) if args.data_dir else None), end="")
    return OK
