"""Simulator designs: the sizes a parameter profile (quick, default, paper) gives a simulator,
read from its YAML design, shared by both papers' simulators."""

from __future__ import annotations


def profile_sizes(profile: str, design: dict, **overrides) -> dict:
    """The sizes of a profile in a design's ``profiles`` section, with overrides; an unknown
    profile or size name is an error naming it."""
    if profile not in design["profiles"]:
        raise ValueError(f"unknown profile {profile!r}; choose from {list(design['profiles'])}")
    unknown = set(overrides) - set(design["profiles"][profile])
    if unknown:
        raise ValueError(f"unknown size parameter(s) {sorted(unknown)}")
    return {**design["profiles"][profile], **overrides}
