"""Storage-level outcomes that services translate into application errors."""


class Duplicate(Exception):
    """A unique key is already taken; the argument names the key's value."""
