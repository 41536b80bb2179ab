"""``monitor``: a decorator that logs every call of a predict function.

The wrapped function runs exactly as before; after it returns, its input is turned into feature
rows, its output into one prediction per row, and each row is queued on the logger with the
call's latency. An exception is logged as an error event (the features of the call, no
prediction) and re-raised unchanged. Monitoring never breaks a prediction: an input it cannot
read is reported once through the ``watchkeeper.sdk`` logging logger and skipped.

Inputs understood: a mapping (one row), a pandas Series (one row), a pandas DataFrame (one row
per frame row), a NumPy 1-D array or a list of values (one row, needs ``feature_names``), a NumPy
2-D array (one row per array row, needs ``feature_names``) and a list of mappings.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from watchkeeper.errors import ConfigError

if TYPE_CHECKING:
    from watchkeeper.sdk.logger import PredictionLogger

__all__ = ["monitor"]

F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger("watchkeeper.sdk")


def _plain(value: Any) -> Any:
    """A NumPy or pandas scalar as the Python value it holds."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 1) == 0:
        return item()
    return value


def _rows(data: Any, feature_names: Sequence[str] | None) -> list[dict[str, Any]]:
    """Feature rows of one call's input."""
    if isinstance(data, Mapping):
        return [dict(data)]
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        if hasattr(data, "to_dict") and hasattr(data, "columns"):
            records: list[dict[str, Any]] = data.to_dict("records")
            return [{str(key): value for key, value in row.items()} for row in records]
        if hasattr(data, "to_dict"):
            return [{str(key): value for key, value in data.to_dict().items()}]
    if module == "numpy" and hasattr(data, "ndim"):
        values = data.tolist()
        if data.ndim == 1:
            values = [values]
        elif data.ndim != 2:
            raise ValueError(f"a NumPy input must be 1-D or 2-D, got {data.ndim}-D")
        return [_named(row, feature_names) for row in values]
    if isinstance(data, list | tuple) and data and all(isinstance(row, Mapping) for row in data):
        return [dict(row) for row in data]
    if isinstance(data, list | tuple):
        return [_named(list(data), feature_names)]
    raise ValueError(f"cannot read features from {type(data).__name__}")


def _named(values: list[Any], feature_names: Sequence[str] | None) -> dict[str, Any]:
    if feature_names is None:
        raise ValueError("an array input needs feature_names=[...] on the decorator")
    if len(values) != len(feature_names):
        raise ValueError(f"{len(values)} values for {len(feature_names)} feature names")
    return dict(zip(feature_names, values, strict=True))


def _predictions(result: Any, count: int) -> list[Any]:
    """One prediction per input row: a scalar for one row, a sequence of ``count`` for many."""
    if hasattr(result, "tolist") and getattr(result, "ndim", 0) >= 1:
        result = result.tolist()
    if isinstance(result, list | tuple):
        if len(result) == count:
            return [_plain(value) for value in result]
        if count == 1:
            return [list(result)]
        raise ValueError(f"{len(result)} predictions for {count} input rows")
    return [_plain(result)] * count


class _Monitor:
    """The state shared by every call of one decorated function."""

    def __init__(
        self,
        logger: PredictionLogger,
        *,
        feature_names: Sequence[str] | None,
        argument: int | str | None,
        output: Callable[[Any], Any] | None,
        function: Callable[..., Any],
    ) -> None:
        self.logger = logger
        self.feature_names = None if feature_names is None else list(feature_names)
        self.output = output
        self.function_name = getattr(function, "__qualname__", repr(function))
        self.warned = False
        parameters = list(inspect.signature(function).parameters)
        if argument is None:
            # A method's first parameter is its instance, never the features.
            argument = 1 if parameters[:1] in (["self"], ["cls"]) else 0
        if isinstance(argument, str):
            if argument not in parameters:
                raise ConfigError(
                    f"argument: {self.function_name} has no parameter {argument!r}",
                    key="argument",
                )
            self.position = parameters.index(argument)
            self.name: str | None = argument
        else:
            self.position = argument
            self.name = parameters[argument] if argument < len(parameters) else None

    def features_of(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        if len(args) > self.position:
            return args[self.position]
        return kwargs.get(self.name) if self.name is not None else None

    def record(self, data: Any, result: Any, started: float, failed: bool) -> None:
        latency_ms = (time.perf_counter() - started) * 1000.0
        try:
            rows = _rows(data, self.feature_names)
            if failed:
                predictions: list[Any] = [None] * len(rows)
            else:
                output = self.output(result) if self.output is not None else result
                predictions = _predictions(output, len(rows))
        except Exception as error:  # monitoring must never break the prediction it watches
            if not self.warned:
                self.warned = True
                _log.warning("watchkeeper cannot log calls of %s: %s", self.function_name, error)
            return
        for row, prediction in zip(rows, predictions, strict=True):
            self.logger.log(row, prediction, latency_ms=latency_ms, error=failed)


def monitor(
    logger: PredictionLogger,
    *,
    feature_names: Sequence[str] | None = None,
    argument: int | str | None = None,
    output: Callable[[Any], Any] | None = None,
) -> Callable[[F], F]:
    """Decorate a predict function so that every call is logged on ``logger``.

    Parameters
    ----------
    logger:
        The :class:`~watchkeeper.sdk.logger.PredictionLogger` to queue events on.
    feature_names:
        Names of the columns of NumPy / list inputs.
    argument:
        Position or name of the parameter holding the features; default the first one (the
        second for methods, after ``self``).
    output:
        Maps the function's return value to the prediction(s), e.g. ``lambda r: r["label"]``.

    Works on plain and ``async`` functions; every row of a batch call gets the call's latency.

    Example
    -------
    >>> @monitor(logger, feature_names=["sepal_length", "sepal_width"])  # doctest: +SKIP
    ... def predict(row):
    ...     return model.predict(row.reshape(1, -1))[0]
    """

    def decorate(function: F) -> F:
        state = _Monitor(
            logger,
            feature_names=feature_names,
            argument=argument,
            output=output,
            function=function,
        )
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def monitored_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    result = await function(*args, **kwargs)
                except Exception:
                    state.record(state.features_of(args, kwargs), None, started, True)
                    raise
                state.record(state.features_of(args, kwargs), result, started, False)
                return result

            return monitored_async  # type: ignore[return-value]

        @functools.wraps(function)
        def monitored(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except Exception:
                state.record(state.features_of(args, kwargs), None, started, True)
                raise
            state.record(state.features_of(args, kwargs), result, started, False)
            return result

        return monitored  # type: ignore[return-value]

    return decorate
