"""Services may share one PostgreSQL or MariaDB database: their tables, indexes and
constraints must not collide (PostgreSQL names indexes per schema, not per table)."""

from __future__ import annotations

import importlib
from collections import Counter

from nimbus.service import REGISTRY


def test_no_two_services_name_a_table_index_or_constraint_alike() -> None:
    names: Counter[str] = Counter()
    for service in REGISTRY:
        metadata = importlib.import_module(f"nimbus.{service}.models").Base.metadata
        for table in metadata.tables.values():
            names[f"table {table.name}"] += 1
            for index in table.indexes:
                names[f"index {index.name}"] += 1
            for constraint in table.constraints:
                if constraint.name and isinstance(constraint.name, str):
                    names[f"constraint {constraint.name}"] += 1
    assert [name for name, count in names.items() if count > 1] == []
