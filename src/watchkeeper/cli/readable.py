"""Readable ``--help``: ``REFERENCE CURRENT`` and ``PATH``, ``TEXT``, ``FLOAT`` for metavars.

Typer 0.29 writes a parameter's type as a Python annotation (``<str>``, ``<bool>`` even for a
flag that takes no value) and a required argument as ``{reference}`` in the usage line, which
reads like an unfilled template. :func:`make_readable` gives every parameter of a command tree
the conventions of most command lines instead: upper-case argument names (``[NAME]`` when
optional), a type word for options that take a value, and nothing for flags. The display
methods are overridden on subclasses of Typer's own parameter classes that the built
parameters are switched to; the same subclasses coerce text and path values without building
pydantic adapters (:mod:`watchkeeper.cli.coercion`), with Typer's results.
"""

from __future__ import annotations

from typing import Any, Final

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from watchkeeper.cli.coercion import plain_coercion

__all__ = ["make_readable", "readable_help_option"]

_TYPE_WORDS: Final = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "path": "PATH",
    "Path": "PATH",
    "datetime": "DATETIME",
    "bool": "BOOLEAN",
}


def _type_word(shown: str | None) -> str | None:
    """``<path>`` → ``PATH``, ``<a|b>`` → ``[a|b]``, ``<float range>`` → ``FLOAT RANGE``."""
    if shown is None:
        return None
    suffix = "..." if shown.endswith("...") else ""
    inner = shown.removesuffix("...").removeprefix("<").removesuffix(">")
    if "|" in inner:
        return f"[{inner}]{suffix}"
    words = [_TYPE_WORDS.get(word, word.upper()) for word in inner.split()]
    return " ".join(words) + suffix


class _ReadableArgument(TyperArgument):
    def get_runtime_param(self) -> Any:
        if self._runtime_param is None:
            self._runtime_param = plain_coercion(self)
        return super().get_runtime_param()

    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else str(self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        return _type_word(super().display_type_rich(ctx))


class _ReadableOption(TyperOption):
    def get_runtime_param(self) -> Any:
        if self._runtime_param is None:
            self._runtime_param = plain_coercion(self)
        return super().get_runtime_param()

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag:
            return None  # a flag takes no value
        if self.metavar is not None:
            return self.metavar
        return _type_word(super().display_type_rich(ctx))


def readable_help_option(option: Any) -> Any:
    """A command's ``--help`` option (Typer makes it on first use) shown as the flag it is."""
    if type(option) is TyperOption:
        option.__class__ = _ReadableOption
    return option


class _ReadableCommand(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return readable_help_option(super().get_help_option(ctx))


class _ReadableGroup(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return readable_help_option(super().get_help_option(ctx))


def make_readable(command: Any) -> Any:
    """Give ``command``'s parameters, and those of its subcommands, readable metavars."""
    if type(command) is TyperCommand:
        command.__class__ = _ReadableCommand
    elif type(command) is TyperGroup:
        command.__class__ = _ReadableGroup
    for param in getattr(command, "params", ()):
        if type(param) is TyperArgument:
            param.__class__ = _ReadableArgument
        elif type(param) is TyperOption:
            param.__class__ = _ReadableOption
    for sub in getattr(command, "commands", {}).values():
        make_readable(sub)
    return command
