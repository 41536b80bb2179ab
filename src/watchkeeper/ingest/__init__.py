"""The ingest contract: a model's spec, and the validation of events, labels and feedback.

Pure and picklable (no I/O, no HTTP). The package reads in data-flow order:

- ``spec``: :class:`ModelSpec` (a model's features, outputs, windows) and the event fields;
- ``rules``: the one table of field rules (accepted values, canonical form, size limits,
  reasons), used by every path below;
- ``columns``: the accepted batch (:class:`ValidColumns`) and :class:`Rejection`;
- ``events``: the one event validator, over raw columns;
- ``json`` / ``arrow``: JSON events and Arrow / Parquet tables turned into raw columns (Arrow
  and Parquet bodies decoded within limits read from their metadata);
- ``feedback``: delayed labels, user feedback and business outcomes;
- ``decode``: request body → :class:`~watchkeeper.ingest.decode.DecodedEvents` for the monitor
  (imported on its own: it builds the monitor's fold batch and the store's rows).

Each event is checked on its own: the valid events of a mixed batch are accepted and every
problem of an invalid one is reported with its index, a dotted field path (``features.age``,
``proba.1``, ``segment.region``) and a reason. Only a batch that is not a list, or is too large,
fails as a whole (:class:`~watchkeeper.errors.IngestError`).
"""

from __future__ import annotations

from watchkeeper.ingest.columns import Rejection, ValidColumns
from watchkeeper.ingest.spec import ModelSpec

__all__ = ["ModelSpec", "Rejection", "ValidColumns"]
