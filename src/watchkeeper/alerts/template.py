"""Safe annotation templates: Jinja2 in a sandbox, with ``value``, ``labels`` and ``threshold``.

Annotation templates come from configuration files and the API, so they run in Jinja2's
:class:`~jinja2.sandbox.SandboxedEnvironment` (no attribute access to internals, no imports,
no file system) with only three variables and one extra filter::

    {{ labels.model }} drift on {{ labels.feature }} = {{ value | printf("%.3f") }}
    (threshold {{ threshold }})

``printf(format)`` applies a C-style ``%`` format to the value. Syntax errors are reported when
the rule is built; a template that fails while rendering yields ``<error expanding template:
...>`` instead of losing the alert, as Prometheus does.
"""

from __future__ import annotations

from collections.abc import Mapping

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from watchkeeper.errors import ConfigError

__all__ = ["AnnotationTemplate"]


def _printf(value: object, pattern: str) -> str:
    return pattern % (value,)


_ENVIRONMENT = SandboxedEnvironment(autoescape=False, undefined=jinja2.Undefined)
_ENVIRONMENT.filters["printf"] = _printf


class AnnotationTemplate:
    """A compiled annotation template; :meth:`render` never raises."""

    __slots__ = ("_compiled", "source")

    def __init__(self, *, source: str, key: str = "annotation") -> None:
        self.source = source
        self._compiled: jinja2.Template | None = None
        if "{" in source:
            try:
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
            return self._compiled.render(value=value, labels=dict(labels), threshold=threshold)
        except Exception as error:
            # A broken annotation must not drop the page: send the alert with the error text.
            return f"<error expanding template: {type(error).__name__}: {error}>"
