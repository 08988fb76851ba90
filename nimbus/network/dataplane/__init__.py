"""Host-side wiring used by the network agents: links, bridges, VXLAN, addresses (ip.py),
filtering, NAT and dnsmasq. Everything runs in a named namespace through nimbus.common.netns."""
