"""Mergeable column profiles and drift computed from them (pure: no I/O).

A profile summarises a column in a fixed, small size: counts, exact moments, a KLL quantile
sketch and counts on fine bins inherited from a reference for numeric columns; capped exact
label counts and a HyperLogLog sketch for categorical columns; true/false counts for boolean
ones. Profiles merge associatively, so a window is the merge of its batches and a day the
merge of its hours. See ``docs/profiles.md``.
"""

from __future__ import annotations

from watchkeeper.profiles.categorical import BooleanProfile, CategoricalProfile
from watchkeeper.profiles.dataset import (
    DatasetProfile,
    ProfileAccumulator,
    ProfileOptions,
    profile_frame,
)
from watchkeeper.profiles.drift import drift_from_profiles
from watchkeeper.profiles.numeric import NumericProfile
from watchkeeper.profiles.quality import quality_summary

__all__ = [
    "BooleanProfile",
    "CategoricalProfile",
    "DatasetProfile",
    "NumericProfile",
    "ProfileAccumulator",
    "ProfileOptions",
    "drift_from_profiles",
    "profile_frame",
    "quality_summary",
]
