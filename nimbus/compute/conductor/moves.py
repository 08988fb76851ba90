"""Moves: resize and cold migration, live migration, evacuation, unshelve and rebuild."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nimbus.compute.conductor import Conductor
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)


class Moves:
    def __init__(self, svc: ComputeService, conductor: Conductor) -> None:
        self.svc = svc
        self.conductor = conductor
