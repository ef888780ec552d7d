"""MongoDB access: the only package that imports pymongo."""
