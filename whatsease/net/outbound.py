"""The one guard for outbound HTTP to URLs that tenants control (external chatbots, webhooks).

A URL an organisation sets could point the server at itself, at the private
network behind it, or at a cloud metadata service (SSRF). Every such call goes
through `post_json`, which:

- accepts only ``https`` (``http`` only when the operator allows private
  targets for development, ``WHATSEASE_OUTBOUND_ALLOW_PRIVATE``);
- resolves the host once, refuses the call if *any* address is loopback,
  private, link-local, CGNAT, multicast, unspecified, reserved or otherwise
  not globally routable (IPv4, IPv6 and IPv4 inside IPv6), then connects to
  exactly that checked address, sending the name as ``Host`` and TLS SNI, so a
  second, different DNS answer (DNS rebinding) is never used;
- never follows redirects, and bounds the time and the size of the answer.

`check_url` runs the checks that need no network (when a setting is saved).
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

# Concurrent outbound requests; more wait their turn (and their timeout).
MAX_CONCURRENT_REQUESTS = 8
DEFAULT_TIMEOUT_SECS = 4.0
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024
MAX_URL_CHARS = 2048
_EXECUTOR = ThreadPoolExecutor(max_workers=MAX_CONCURRENT_REQUESTS,
                               thread_name_prefix="outbound")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Networks that is_global does not already exclude but that no tenant URL may
# reach: NAT64 and 6to4 embed an IPv4 address (checked separately below), and
# multicast ranges can be "global" in the registry's sense.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class OutboundRefused(Exception):
    """The URL or the address it resolves to may not be called; the message says why."""


class OutboundError(Exception):
    """The call was allowed but failed: timeout, network error, too large an answer."""


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class OutboundPolicy:
    """How tenant-controlled URLs may be called.

    ``allow_private`` admits ``http`` and non-public addresses: for development
    against a local fake only. ``resolver`` is injectable so tests can play a
    DNS server that answers private addresses.
    """

    allow_private: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECS
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    resolver: Resolver = field(default=_system_resolver, compare=False)


@dataclass(frozen=True)
class Target:
    """A checked URL: scheme, host name (IDNA), port, and the path with its query."""

    scheme: str
    host: str
    port: int
    path: str


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = ""      # the Content-Type header, as sent


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4-in-IPv6 unwrapped)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None and not is_public_address(embedded):
            return False
        if address in _NAT64_LOCAL:
            return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def _literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including the shorthand IPv4 forms that
    resolvers accept (``2130706433``, ``0x7f.1``, ``127.1``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, policy: OutboundPolicy) -> Target:
    """Parse ``url`` and apply every check that needs no DNS; raise `OutboundRefused`."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise OutboundRefused(f"must be a URL of at most {MAX_URL_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise OutboundRefused("must not contain spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if policy.allow_private else ("https",)
    if scheme not in allowed:
        raise OutboundRefused("must be an https:// URL" if not policy.allow_private
                              else "must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("must not carry a user name or password")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused("has an invalid port") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundRefused("must name a host")
    literal = _literal_address(host)
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise OutboundRefused("has a host name that is not valid") from None
        if not policy.allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise OutboundRefused("must not point at this machine")
    else:
        if not policy.allow_private and not is_public_address(literal):
            raise OutboundRefused(f"must not point at a private or local address ({literal})")
        host = str(literal)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path)


async def resolve(target: Target, policy: OutboundPolicy) -> str:
    """The one address to connect to; refuse if any address the name has is not public.

    Every answer is checked, not only the first: a name with one public and one
    private address could otherwise be steered to the private one.
    """
    literal = _literal_address(target.host)
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = await asyncio.wait_for(policy.resolver(target.host, target.port),
                                                policy.timeout)
        except (OSError, TimeoutError) as exc:
            raise OutboundError(f"cannot resolve {target.host}: {exc}") from None
    addresses: list[IPAddress] = []
    for raw in candidates:
        try:
            addresses.append(ipaddress.ip_address(raw.split("%", 1)[0]))
        except ValueError:
            raise OutboundRefused(f"{target.host} resolves to a malformed address") from None
    if not addresses:
        raise OutboundError(f"{target.host} has no address")
    if not policy.allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise OutboundRefused(f"{target.host} resolves to a private or local address "
                                      f"({address})")
    return str(addresses[0])


async def check_url_resolved(url: str, policy: OutboundPolicy) -> Target:
    """`check_url` plus the DNS check: for validating a setting when it is saved."""
    target = check_url(url, policy)
    await resolve(target, policy)
    return target


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address while speaking to the host name (Host header)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As `_PinnedHTTPConnection`, with TLS verified against the host name (SNI too)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _request(method: str, target: Target, address: str, body: bytes | None,
             headers: Mapping[str, str], policy: OutboundPolicy) -> Response:
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target.host, target.port, address, policy.timeout)
    try:
        connection.request(method, target.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        # http.client never follows redirects: a 3xx is returned as it is.
        data = response.read(policy.max_response_bytes + 1)
        return Response(response.status, data, response.getheader("Content-Type") or "")
    finally:
        connection.close()


async def post_json(url: str, body: bytes, policy: OutboundPolicy, *,
                    headers: Mapping[str, str] | None = None) -> Response:
    """POST ``body`` (JSON) to a tenant-controlled ``url`` under ``policy``.

    Raises `OutboundRefused` when the URL or its address is not allowed and
    `OutboundError` on timeout, network failure, a redirect or an answer larger
    than ``policy.max_response_bytes``. Redirects are never followed.
    """
    sent = {"Content-Type": "application/json", "Accept": "application/json",
            **(headers or {})}
    return await _call("POST", url, body, sent, policy)


async def get_bytes(url: str, policy: OutboundPolicy, *,
                    headers: Mapping[str, str] | None = None) -> Response:
    """GET ``url`` under ``policy`` (a file a platform keeps for us); as `post_json`."""
    return await _call("GET", url, None, dict(headers or {}), policy)


async def _call(method: str, url: str, body: bytes | None, sent: Mapping[str, str],
                policy: OutboundPolicy) -> Response:
    target = check_url(url, policy)
    address = await resolve(target, policy)
    loop = asyncio.get_running_loop()
    try:
        response = await asyncio.wait_for(
            loop.run_in_executor(_EXECUTOR, _request, method, target, address, body, sent,
                                 policy),
            policy.timeout + 0.5)
    except TimeoutError:
        raise OutboundError(f"no answer within {policy.timeout:.1f} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise OutboundError(f"cannot reach {target.host}: {exc}") from None
    if 300 <= response.status < 400:
        raise OutboundError(f"HTTP {response.status}: redirects are not followed")
    if len(response.body) > policy.max_response_bytes:
        raise OutboundError(f"the answer is larger than {policy.max_response_bytes} bytes")
    return response
