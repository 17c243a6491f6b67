"""Where a webhook may go: a URL the operator allows, on a host whose
addresses are public unless the operator named it.

Checked twice with the same rules: when the job is submitted (a refused URL is
bad input: 422, nothing recorded) and before every delivery attempt, after
resolving the host again, since its DNS may point elsewhere by then. The
attempt then connects to an address this check passed (``Destination``), so a
second resolution can never send it somewhere unchecked.

The rules, in order:

1. ``http`` or ``https``; printable ASCII only; no user or password in it; at
   most ``webhook_max_url_chars``; a host that is a DNS name or a plain IPv4 or
   IPv6 address (not ``127.1`` or ``0x7f000001``, which resolvers read as
   loopback); no ``.`` or ``..`` path segments (they would escape a prefix).
2. ``webhook_allow`` empty: any such URL. Otherwise one of its entries must
   match: a host name (``hooks.example.com``), a wildcard
   (``*.example.com``: any name under it, not the name itself), an address or
   network (``10.0.0.0/8``: every address of the host inside one), or a URL
   prefix (``https://hooks.example.com/chorus/``: same scheme, host and port,
   the path at or below it).
3. Every address the host resolves to must be public: not loopback, private,
   link-local, multicast, unspecified, reserved or otherwise not global (IPv4
   inside IPv6 is judged as IPv4). Except when ``webhook_allow_private`` is
   set, or the entry that matched names this host exactly (a host name, an
   address or network containing the address, a URL prefix); a wildcard never
   lets a non-public address through.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from chorus.configs import Settings
from chorus.tasks.errors import WebhookRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

SCHEMES = {"http": 80, "https": 443}
MAX_ADDRESSES = 16  # of one host, all checked
# Printable ASCII, less what RFC 3986 never allows unescaped (space " < > \ ^ ` { | }):
# parsers disagree about those, and a URL read two ways is checked one way and called the other.
_URL = re.compile(r"[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")  # a last label resolvers would read as a number
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Rule:
    """One entry of the allow-list."""

    kind: Literal["host", "wildcard", "network", "prefix"]
    host: str = ""  # host, wildcard (the part after "*."), prefix
    network: Network | None = None
    scheme: str = ""  # prefix
    port: int = 0  # prefix
    path: str = ""  # prefix

    @classmethod
    def parse(cls, entry: str) -> Rule:
        text = entry.strip().lower()
        if text.startswith(("http://", "https://")):
            split = urlsplit(text)
            if not split.hostname or split.query or split.fragment or "@" in split.netloc:
                raise ValueError(f"webhook_allow: {entry!r} is not a URL prefix (scheme://host[:port]/path)")
            return cls("prefix", host=split.hostname, scheme=split.scheme,
                       port=split.port or SCHEMES[split.scheme], path=split.path)
        if text.startswith("*."):
            _host_name(text[2:])
            return cls("wildcard", host=text[2:])
        try:
            return cls("network", network=ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            pass
        _host_name(text)
        return cls("host", host=text)

    def names(self, scheme: str, host: str, port: int, path: str) -> bool:
        """Whether the rule matches by name (networks match by address)."""
        if self.kind == "host":
            return host == self.host
        if self.kind == "wildcard":
            return host.endswith("." + self.host)
        if self.kind == "prefix":
            base = self.path.rstrip("/")
            below = not base or path == base or path.startswith(base + "/")
            return (scheme, host, port) == (self.scheme, self.host, self.port) and below
        return False


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    allow_private: bool
    max_url_chars: int

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        """The operator's policy; a malformed allow-list entry raises ValueError."""
        return cls(tuple(Rule.parse(entry) for entry in settings.webhook_allow), settings.webhook_allow_private,
                   settings.webhook_max_url_chars)


@dataclass(frozen=True)
class Destination:
    """A checked URL and the addresses its host had when checked."""

    url: str
    scheme: str
    host: str  # lower case; an IPv6 address without brackets
    port: int
    target: str  # path and query, as sent
    addresses: tuple[Address, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"

    @property
    def server_name(self) -> str | None:
        """The name TLS checks the certificate against (none for an address)."""
        return None if _literal(self.host) else self.host

    def pinned_url(self, address: Address) -> str:
        """The URL with its host replaced by a checked address."""
        literal = f"[{address.compressed}]" if address.version == 6 else address.compressed
        return f"{self.scheme}://{literal}:{self.port}{self.target}"


def resolve_host(host: str, port: int) -> list[str]:
    """The host's addresses, as the system's resolver gives them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_webhook_url(url: str, policy: Policy, resolve: Resolver = resolve_host) -> Destination:
    """The destination of ``url`` under ``policy``; WebhookRefused says why not."""
    if len(url) > policy.max_url_chars:
        raise WebhookRefused(f"webhook URL longer than {policy.max_url_chars} characters")
    if not _URL.fullmatch(url):
        raise WebhookRefused("webhook URL has characters a URL may not carry unescaped (spaces, non-ASCII, \\ ...)")
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:  # unbalanced brackets, a port out of range
        raise WebhookRefused("webhook URL cannot be parsed (its host or port)") from None
    scheme = split.scheme.lower()
    if scheme not in SCHEMES:
        raise WebhookRefused(f"webhook URL must be http or https, not {scheme or 'schemeless'!r}")
    if "@" in split.netloc:
        raise WebhookRefused("webhook URL may not carry a user name or password")
    host = (split.hostname or "").rstrip(".")
    if not host:
        raise WebhookRefused("webhook URL has no host")
    if port == 0:
        raise WebhookRefused("webhook URL has port 0")
    port = port or SCHEMES[scheme]
    if not _literal(host):
        try:
            _host_name(host)
        except ValueError as exc:
            raise WebhookRefused(f"webhook URL: {exc}") from None
    path = split.path or "/"
    if any(part in (".", "..") for part in unquote(path).split("/")):
        raise WebhookRefused("webhook URL may not have '.' or '..' path segments")

    named = [rule for rule in policy.rules if rule.names(scheme, host, port, path)]
    if policy.rules and not named and not any(rule.kind == "network" for rule in policy.rules):
        raise WebhookRefused(f"webhook host {host!r} is not on this server's allow-list")
    explicit = policy.allow_private or any(rule.kind != "wildcard" for rule in named)

    addresses = _addresses(host, port, resolve)
    networks = [rule.network for rule in policy.rules if rule.network is not None]
    if policy.rules and not named and not all(any(a in n for n in networks) for a in addresses):
        raise WebhookRefused(f"webhook host {host!r} is not on this server's allow-list")
    for address in addresses:
        kind = non_public(address)
        if kind and not explicit and not any(address in network for network in networks):
            what = "is" if _literal(host) else f"resolves to {address.compressed},"
            raise WebhookRefused(f"webhook host {host} {what} not a public address ({kind}); this server does not "
                                 "call those unless its operator allows them")
    target = path + (f"?{split.query}" if split.query else "")
    return Destination(url, scheme, host, port, target, addresses)


def non_public(address: Address) -> str | None:
    """What kind of address this is when it is not a public one; None when public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # the same host as the IPv4 address
            return non_public(address.ipv4_mapped)
        # 6to4, Teredo and NAT64 lead to the IPv4 address they carry
        embedded = address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (kind := non_public(embedded)):
            return kind
    for kind, test in (
        ("loopback", address.is_loopback), ("link-local", address.is_link_local),
        ("multicast", address.is_multicast), ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved), ("private", address.is_private),
    ):
        if test:
            return kind
    return None if address.is_global else "non-public"


def _addresses(host: str, port: int, resolve: Resolver) -> tuple[Address, ...]:
    if _literal(host):
        return (ipaddress.ip_address(host),)
    try:
        found = list(resolve(host, port))[:MAX_ADDRESSES]
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"webhook host {host!r} does not resolve: {exc}") from None
    if not found:
        raise WebhookRefused(f"webhook host {host!r} has no address")
    return tuple(ipaddress.ip_address(a) for a in found)


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return "%" not in host  # a scoped IPv6 address names an interface of this machine: refused as a name


def _host_name(host: str) -> None:
    """Refuse what is not a DNS name (ValueError)."""
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a host name")
    if _NUMERIC.fullmatch(labels[-1]):
        raise ValueError(f"{host!r} is neither a host name nor a plain IP address")
