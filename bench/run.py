"""Every benchmark, one after the other: `make bench`."""

from bench import compute, identity, image, network, placement

if __name__ == "__main__":
    identity.main()
    image.main()
    network.main()
    placement.main()
    compute.main([])
