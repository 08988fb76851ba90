"""Compute (Nova): the API, conductor and scheduler, and the compute agents with their virt
drivers. Placement, images and networks are reached only through their public APIs."""
