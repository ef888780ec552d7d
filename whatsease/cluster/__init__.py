"""Scale-out: which instance holds whose sockets (the ring) and who is in the cluster (membership).

`ring` is pure: no I/O, no event loop, the same answer in every process.
`membership` turns a member list (Fly's private DNS, a static list) and
heartbeats into ring generations.
"""
