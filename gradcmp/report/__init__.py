"""Renderers of a Report: ``table`` for people, ``json`` for programs."""

from __future__ import annotations

FORMATS = ("table", "json")
