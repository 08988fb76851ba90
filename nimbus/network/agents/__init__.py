"""Network agents: what runs on each host to wire what the server computed. This package
holds the fake used by tests; the data-plane agents (l2, dhcp, l3, metadata) join it."""
