"""The console's response security headers, one definition for CloudFront (``lisa_stacks.console``)
and for local mode's console server (``local_mode.console_server``). Plain Python, no CDK import.

The console is plain ES modules and one stylesheet from its own origin: no inline script or style,
no frames, no third-party origin. The browser may connect only to its own origin and the two APIs.
"""

from __future__ import annotations

from collections.abc import Iterable

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def content_security_policy(api_origins: Iterable[str], *, oidc_origin: str = "") -> str:
    """A strict CSP: everything from ``'self'``; ``connect-src`` adds the APIs (and the OIDC
    provider's token endpoint, which the browser calls for the PKCE code exchange)."""
    origins = {origin_of(url) for url in (*api_origins, oidc_origin) if url}
    connect = ["'self'", *sorted(origins)]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (a CSP source with a path would match that path only).
    Plain text, not ``urlsplit``: CDK tokens such as ``${Token[AWS.Region.12]}`` may be in the host."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
