"""Every benchmark, one after the other: `make bench`."""

from bench import identity

if __name__ == "__main__":
    identity.main()
