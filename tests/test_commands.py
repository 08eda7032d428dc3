"""The command table: every command it lists reaches a function (a misspelt handler would show only when typed)."""

from __future__ import annotations

import inspect

from sitegate.commands import COMMANDS, Group, build_parser, handler


def test_every_command_in_the_table_reaches_a_function_of_one_argument():
    commands = [c for entry in COMMANDS for c in (entry.commands if isinstance(entry, Group) else [entry])]
    for command in commands:
        function = handler(command.handler)
        assert list(inspect.signature(function).parameters) == ["args"], command.name


def test_the_parser_sets_the_handler_the_table_names():
    args = build_parser().parse_args(["key", "replace", "--reason", "lost"])
    assert (args.handler, args.reason, args.json) == ("key:replace", "lost", False)
