"""Every benchmark, one after the other: `make bench`."""

import os

from bench import compute, dataplane, identity, image, network, placement

if __name__ == "__main__":
    identity.main()
    image.main()
    network.main()
    placement.main()
    compute.main([])
    if os.geteuid() == 0:  # real guests need namespaces
        dataplane.main([])
