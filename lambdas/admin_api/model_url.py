"""Which ``modelUrl`` an external model may have: no server-side request forgery through the gateway.

The serve app sends requests (with the provider's API key) to an external model's ``modelUrl``, so
an admin-supplied URL must not point into the deployment's own network or the instance metadata
service. A URL is accepted when:

* its scheme is ``https`` (``http`` too when ``MODEL_URL_ALLOW_HTTP`` is true) and it carries no
  credentials (``user:password@``: the key belongs in ``apiKey``, i.e. Secrets Manager);
* every address its host resolves to is a public address, or lies in one of the networks of
  ``MODEL_URL_ALLOWED_CIDRS``. Not public: private, loopback, link-local (169.254.169.254),
  reserved, multicast, unspecified or otherwise not globally routable; an IPv4-mapped IPv6 address
  is judged as the IPv4 address it carries.

The check runs when the model is created (the URL cannot be changed later). It cannot stop a
name that is later re-pointed (DNS rebinding); pin the provider's host names you trust.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from lisa_domain.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: host, port -> the addresses the host resolves to (raises OSError when it does not resolve).
Resolver = Callable[[str, int], list[str]]

#: (property of ``ipaddress`` addresses, how the rejection names it), checked in this order.
_NOT_PUBLIC = (
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_unspecified", "an unspecified"),
    ("is_multicast", "a multicast"),
    ("is_private", "a private"),
    ("is_reserved", "a reserved"),
)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``MODEL_URL_ALLOWED_CIDRS``: comma-separated CIDRs (blank entries ignored)."""
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise RuntimeError(f"MODEL_URL_ALLOWED_CIDRS: {error}") from error


def _not_public(address: IPAddress) -> str | None:
    """How ``address`` is not public (for the message), or None when it is."""
    for attribute, label in _NOT_PUBLIC:
        if getattr(address, attribute):
            return label
    return None if address.is_global else "a non-public"


@dataclass(frozen=True)
class ModelUrlPolicy:
    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = resolve

    @classmethod
    def from_config(
        cls, allow_http: bool, allowed_cidrs: str, resolver: Resolver = resolve
    ) -> ModelUrlPolicy:
        return cls(allow_http, parse_networks(allowed_cidrs), resolver)

    def check(self, url: str) -> None:
        """ValidationFailed naming ``modelUrl`` unless the policy accepts ``url``."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise ValidationFailed(f"modelUrl: not a valid URL ({error})") from error
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise ValidationFailed(
                f"modelUrl: the scheme must be {' or '.join(schemes)}"
                + ("" if self.allow_http else " (http needs the deployment's modelUrlPolicy.allowHttp)")
            )
        if parts.username is not None or parts.password is not None:
            raise ValidationFailed("modelUrl: must not contain credentials (send the key as apiKey)")
        host = parts.hostname
        if not host:
            raise ValidationFailed("modelUrl: has no host")
        try:
            addresses = self.resolver(host, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError) as error:
            raise ValidationFailed(f"modelUrl: the host '{host}' does not resolve") from error
        if not addresses:
            raise ValidationFailed(f"modelUrl: the host '{host}' does not resolve")
        for address in self._parsed(addresses):
            problem = _not_public(address)
            if problem is not None and not self._allowed(address):
                raise ValidationFailed(
                    f"modelUrl: the host '{host}' resolves to {address}, {problem} address; only public "
                    "addresses are allowed (or the deployment's modelUrlPolicy.allowedCidrs)"
                )

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks)

    @staticmethod
    def _parsed(addresses: Iterable[str]) -> list[IPAddress]:
        parsed: list[IPAddress] = []
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            parsed.append(address)
        return parsed
