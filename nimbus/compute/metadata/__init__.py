"""The metadata service's content, as Nova renders it for 169.254.169.254: the OpenStack format
(/openstack/<version>/meta_data.json, network_data.json, user_data, vendor data, password)
and the EC2 format (/<version>/meta-data/…, /<version>/user-data), for one instance.

No HTTP here: the network side's metadata proxy (in each DHCP namespace) finds the instance
behind a request and asks compute over the bus (topic "compute-metadata", see endpoint.py),
which answers {"status", "content_type", "body"}.

    answer.py        the answer (status, type, body) and directory listings
    instance.py      what a request reads about the instance: its row, keys, ports' subnets
    openstack.py     the OpenStack format: versions, meta_data.json and the routing of /openstack
    network_data.py  network_data.json from the instance's ports and their subnets
    ec2.py           the EC2 format: versions, the meta-data tree, user-data
    handler.py       one request: path -> answer
    endpoint.py      the bus endpoint
"""
