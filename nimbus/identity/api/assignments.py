"""Routes for assignments (to be written)."""

from fastapi import APIRouter

router = APIRouter()
POLICY: dict[str, str] = {}
