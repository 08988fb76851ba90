"""Routes for trusts (to be written)."""

from fastapi import APIRouter

router = APIRouter()
POLICY: dict[str, str] = {}
