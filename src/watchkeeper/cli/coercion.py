"""Option values coerced without pydantic where Typer's coercion is the identity or ``Path()``.

Typer 0.29 coerces every parameter through a pydantic ``TypeAdapter``, built on first use;
importing pydantic and building the adapters is about 0.06 s of a ``watchkeeper report`` process
that a CI gate runs on every build, where every value is text or a path, or not given at all.
:class:`PlainCoercion` takes those cases itself, with the result Typer gives: ``None`` for a
value not given, the string itself for a ``str`` parameter, and a ``Path`` checked by Typer's
own ``coerce_cli_path`` (which skips pydantic when handed a ``Path``). Anything else (numbers,
choices, lists, files, custom parsers) goes to Typer's own coercion, built when first needed,
so values and error messages stay Typer's. If Typer's internals move, :func:`plain_coercion`
returns ``None`` and Typer's default applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["plain_coercion"]

try:
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_path
except ImportError:  # pragma: no cover - another Typer: its default coercion applies
    RuntimeParam = None  # type: ignore[assignment,misc]


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainCoercion(RuntimeParam):
        """Typer's coercion for text and path values, pydantic's only for the rest."""

        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) and _is_plain(self.descriptor):
                if self.annotation is str:
                    return value
                if self.annotation is Path:
                    return coerce_cli_path(
                        Path(value), self.parameter_info, path_type=Path, param=param, ctx=ctx
                    )
            typer_own = build_runtime_param(self.descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def _is_plain(descriptor: Any) -> bool:
    """A ``str`` or ``Path`` parameter with no parser, choices, file or path-type option."""
    info = descriptor.parameter_info
    return (
        descriptor.annotation in (str, Path)
        and descriptor.file_annotation is None
        and getattr(info, "parser", None) is None
        and getattr(info, "path_type", None) is None
        and not descriptor.is_choice
    )


def plain_coercion(param: Any) -> Any:
    """The coercion to give ``param`` (a Typer parameter), or ``None`` to keep Typer's."""
    descriptor = getattr(param, "type_descriptor", None)
    if RuntimeParam is None or descriptor is None:
        return None
    return PlainCoercion(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        descriptor=descriptor,
    )
