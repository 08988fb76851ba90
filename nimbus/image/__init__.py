"""Image service (Glance v2)."""
