"""Delivery: the hub of live sockets and the server → client frames, shared by every service.

Neither Tornado nor a service lives here, so messaging, support, auth and the
socket transport in realtime/ can all depend on it without depending on each
other. ``Hub.send`` is the one seam a cluster backend replaces.
"""
