"""Server actions that move or remake a server: resize (confirm, revert), migrate,
live-migrate, evacuate, rebuild, shelve (offload, unshelve), createImage, createBackup."""

from __future__ import annotations
