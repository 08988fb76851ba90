"""Placement: resource providers, inventories, allocations and candidates."""
