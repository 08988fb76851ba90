"""The external host's witness: one line per ICMP echo request it receives, with the source
address, so a test can see whose address a guest's traffic left the cloud with (SNAT).

Run inside the external host's namespace: python icmp_witness.py LOGFILE"""

from __future__ import annotations

import socket
import sys


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with open(sys.argv[1], "a", buffering=1) as log:
        while True:
            packet, (source, _) = sock.recvfrom(65535)
            header = (packet[0] & 0x0F) * 4
            if len(packet) > header and packet[header] == 8:  # echo request
                log.write(source + "\n")


if __name__ == "__main__":
    main()
