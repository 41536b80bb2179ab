"""Safe annotation templates: Jinja2 in a sandbox, with ``value``, ``labels`` and ``threshold``.

Annotation templates come from configuration files and the API, so they run in Jinja2's
:class:`~jinja2.sandbox.SandboxedEnvironment` (no attribute access to internals, no imports,
no file system) with only three variables and one extra filter::

    {{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}
    (threshold {{ threshold }})

``printf(format)`` applies a C-style ``%`` format to the value. Syntax errors are reported when
the rule is built; a template that fails while rendering yields ``<error expanding template:
...>`` instead of losing the alert, as Prometheus does.

Templates reach the server through the API, so rendering is bounded: only expressions,
``if`` blocks and a short list of filters are allowed (no loops, macros or calls, checked when
the rule is built); ``**`` takes exponents up to 64, integers stay below 4,096 bits and ``*``
builds strings or lists of at most 10,000 items; the rendered text is cut at 8 KiB.
``{{ 9**(9**7) }}`` and ``{{ "x" * 200000000 }}`` render an error text in microseconds instead
of holding the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from watchkeeper.errors import ConfigError

__all__ = ["AnnotationTemplate"]


MAX_OUTPUT = 8 * 1024
_MAX_EXPONENT = 64
_MAX_REPEAT = 10_000
_MAX_INTEGER_BITS = 4096
_ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "d", "default", "float", "int", "length", "lower", "printf",
        "round", "string", "title", "trim", "upper",
    }
)  # fmt: skip
# Expression nodes plus `if` blocks: no loops, macros, calls, assignments or imports.
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Name, nodes.Const,
    nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test, nodes.CondExpr,
    nodes.BinExpr, nodes.UnaryExpr, nodes.Compare, nodes.Operand, nodes.Concat, nodes.Tuple,
    nodes.List, nodes.Keyword,
)  # fmt: skip


def _printf(value: object, pattern: str) -> str:
    return pattern % (value,)


class _BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose ``**`` and ``*`` cannot build huge numbers or strings."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if isinstance(left, int) and isinstance(right, int):
            bits = left.bit_length() * (abs(right) if operator == "**" else 1)
            bits += right.bit_length() if operator == "*" else 0
            if bits > _MAX_INTEGER_BITS:
                raise SecurityError(f"an integer of more than {_MAX_INTEGER_BITS} bits")
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent {right!r} is larger than {_MAX_EXPONENT}")
            return left**right
        for sequence, times in ((left, right), (right, left)):
            repeats = isinstance(sequence, str | list | tuple) and isinstance(times, int)
            if repeats and len(sequence) * times > _MAX_REPEAT:
                raise SecurityError(f"a repeat of more than {_MAX_REPEAT} items")
        return left * right


_ENVIRONMENT = _BoundedEnvironment(autoescape=False, undefined=jinja2.Undefined)
_ENVIRONMENT.filters["printf"] = _printf


def _check_allowed(source: str, key: str) -> None:
    for node in _ENVIRONMENT.parse(source).find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            raise ConfigError(
                f"{key}: {type(node).__name__.lower()} is not allowed in annotation templates; "
                "use expressions, filters and {% if %} blocks",
                key=key,
            )
        if isinstance(node, nodes.Filter) and node.name not in _ALLOWED_FILTERS:
            raise ConfigError(
                f"{key}: filter {node.name!r} is not allowed; use one of "
                f"{', '.join(sorted(_ALLOWED_FILTERS))}",
                key=key,
            )


class AnnotationTemplate:
    """A compiled annotation template; :meth:`render` never raises."""

    __slots__ = ("_compiled", "source")

    def __init__(self, *, source: str, key: str = "annotation") -> None:
        self.source = source
        self._compiled: jinja2.Template | None = None
        if "{" in source:
            try:
                _check_allowed(source, key)
                self._compiled = _ENVIRONMENT.from_string(source)
            except jinja2.TemplateSyntaxError as error:
                raise ConfigError(
                    f"{key}: template does not parse (line {error.lineno}: {error.message}); "
                    'write e.g. {{ labels.model }} or {{ value | printf("%.3f") }}',
                    key=key,
                ) from error

    def render(
        self, *, value: float | None, labels: Mapping[str, str], threshold: float | None
    ) -> str:
        """Return the text for one alert."""
        if self._compiled is None:
            return self.source
        try:
            text = self._compiled.render(value=value, labels=dict(labels), threshold=threshold)
        except Exception as error:
            # A broken annotation must not drop the page: send the alert with the error text.
            return f"<error expanding template: {type(error).__name__}: {error}>"[:MAX_OUTPUT]
        return text if len(text) <= MAX_OUTPUT else text[: MAX_OUTPUT - 1] + "…"
