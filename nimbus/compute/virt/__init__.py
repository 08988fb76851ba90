"""Virt drivers: the interface, and the fake driver."""
