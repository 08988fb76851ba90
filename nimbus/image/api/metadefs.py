"""/v2/metadefs: the metadata definitions catalog (filled in later)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
