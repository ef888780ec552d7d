"""Contact addresses of external people: ``<prefix>:<platform id>`` (``wa:+4915112345678``)."""

from __future__ import annotations

import re

from whatsease.errors import invalid

# A provider's prefix (lower-case letters, as the built-ins' "wa", "tg", "lb") and a
# platform id without spaces, colons or "@" (so an email address is never one).
_CONTACT = re.compile(r"[a-z][a-z0-9_]{0,15}:[^\s:@]{1,128}")


def is_contact_address(value: str) -> bool:
    """True when ``value`` has the shape of an external contact's address."""
    return bool(_CONTACT.fullmatch(value))


def contact_address(value: object, field: str) -> str:
    """``value`` as a contact address; raises the 422 ``invalid(field)`` otherwise."""
    if not isinstance(value, str) or not is_contact_address(value.strip()):
        raise invalid(field, "must be a contact address such as wa:+4915112345678")
    return value.strip()
