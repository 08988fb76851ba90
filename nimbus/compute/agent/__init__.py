"""The compute agent: one per hypervisor host (many fake ones may share a process)."""
