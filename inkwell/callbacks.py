"""Job callbacks: when a job finishes, POST its summary to the URL given at submission.

The body is signed with HMAC-SHA256 using the submitting token's webhook secret:
``X-Inkwell-Signature: t=<unix time>,v1=<hex hmac of "<t>.<body>">``, so a receiver can check
both that Inkwell sent it and that it is fresh. Only http(s) URLs are accepted, and every address
the host name resolves to is checked right before connecting, to that very address: a name that
resolves to a harmless address at submission cannot be pointed at the metadata service later.
Only public addresses are allowed by default: loopback, private, link-local, shared and reserved
ones need ``INKWELL_CALLBACK_ALLOWED_NETWORKS`` (for internal receivers), and the denied networks
(cloud metadata, multicast) are never reached. IPv6 addresses that carry an IPv4 address
(IPv4-mapped and -compatible, NAT64, 6to4, Teredo) are judged by that address too. Redirects
are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from inkwell.models import Job

MAX_URL_LENGTH = 2000
METADATA_HOSTS = {
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
}


class CallbackRefused(ValueError):
    """The callback URL is not allowed (the message says why)."""


class CallbackFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; worth retrying."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def denied_networks(spec: str) -> list[Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


@dataclass(frozen=True)
class AddressPolicy:
    """Where callbacks may connect: never to ``denied``; to a non-public address (loopback,
    private, link-local, shared, reserved) only when it is in ``allowed`` (internal receivers)."""

    denied: tuple[Network, ...]
    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings) -> AddressPolicy:  # settings: inkwell.config.Settings
        return cls(
            tuple(denied_networks(settings.callback_denied_networks)),
            tuple(denied_networks(settings.callback_allowed_networks)),
        )


def address_forms(ip: Address) -> list[Address]:
    """Every address ``ip`` stands for: itself and any IPv4 address it carries.

    ``::ffff:a.b.c.d`` (IPv4-mapped) and ``::a.b.c.d`` (IPv4-compatible) are the IPv4 address
    itself; NAT64 (``64:ff9b::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``) and Teredo addresses reach
    the IPv4 address they embed through a translator, so both forms are judged.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible (deprecated, still routed by some stacks); not :: or ::1
        return [low]
    forms: list[Address] = [ip]
    if any(ip in prefix for prefix in NAT64_PREFIXES):
        forms.append(low)
    if ip.sixtofour is not None:
        forms.append(ip.sixtofour)
    if ip.teredo is not None:
        forms.append(ip.teredo[1])
    return forms


def refusal(address: str, policy: AddressPolicy) -> str | None:
    """Why a callback may not connect to ``address`` (an IP literal), or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    for form in address_forms(ip):
        if any(form in network for network in policy.denied if network.version == form.version):
            return f"{ip} is in a denied network"
        if not form.is_global and not any(
            form in network for network in policy.allowed if network.version == form.version
        ):
            return f"{ip} is not a public address (allow internal receivers with INKWELL_CALLBACK_ALLOWED_NETWORKS)"
    return None


def check_callback_url(url: str, policy: AddressPolicy) -> str:
    """The URL if it may be used as a callback; resolving names is left for delivery time."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url must not carry credentials")
    host = parts.hostname.rstrip(".").lower()
    if host in METADATA_HOSTS:
        raise CallbackRefused("callback_url must not point at a cloud metadata service")
    try:
        refused = refusal(host.strip("[]"), policy)
    except ValueError:
        refused = None  # a name, not an address: checked when it is resolved
    if refused:
        raise CallbackRefused(f"callback_url must not point at {host}: {refused}")
    try:
        parts.port
    except ValueError:
        raise CallbackRefused("callback_url has an invalid port") from None
    return url


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def payload(job: Job, base_url: str = "") -> bytes:
    """The job summary sent to the callback URL."""
    body = {
        "event": "job.finished",
        "job": {
            "id": job.id,
            "status": job.status.value,
            "error": job.error,
            "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "progress": {
                "pages_total": job.page_count,
                "pages_done": job.pages_done,
                "pages_failed": job.pages_failed,
                "lines_total": job.line_count,
                "lines_done": job.lines_done,
            },
            "url": f"{base_url}/api/v1/jobs/{job.id}",
            "result_url": f"{base_url}/api/v1/jobs/{job.id}/result",
        },
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Delivery:
    status: int


def deliver(url: str, body: bytes, secret: str, policy: AddressPolicy, timeout: float) -> Delivery:
    """POST ``body`` to ``url`` (signed), connecting only to an allowed address; raise CallbackFailed otherwise."""
    check_callback_url(url, policy)
    parts = urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except socket.gaierror as error:
        raise CallbackFailed(f"cannot resolve {host}: {error}") from None
    refused = [reason for reason in (refusal(a, policy) for a in addresses) if reason]
    if refused or not addresses:
        raise CallbackRefused(f"{host} resolves to an address callbacks may not reach: {'; '.join(refused) or 'none'}")
    allowed = addresses
    timestamp = int(time.time())
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": "Inkwell-Callback/1",
        "X-Inkwell-Signature": signature(secret, timestamp, body),
    }
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    kwargs = {"timeout": urllib3.Timeout(connect=min(timeout, 5.0), read=timeout), "retries": False}
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(allowed[0], port, server_hostname=host, assert_hostname=host, **kwargs)
    else:
        pool = urllib3.HTTPConnectionPool(allowed[0], port, **kwargs)
    try:
        response = pool.urlopen("POST", target, body=body, headers=headers, redirect=False, preload_content=True)
    except urllib3.exceptions.HTTPError as error:
        raise CallbackFailed(f"{type(error).__name__}: {error}") from None
    finally:
        pool.close()
    if not 200 <= response.status < 300:
        raise CallbackFailed(f"the receiver answered {response.status}")
    return Delivery(response.status)


def deliver_job_callback(
    db, job_id: str, policy: AddressPolicy, timeout: float, attempts_allowed: int, base_url: str = ""
) -> str:
    """Send a finished job's callback once; returns the new state ('delivered', 'pending' or 'failed').

    Raises CallbackFailed when another try should follow (the caller schedules it with backoff).
    """
    from inkwell.models import ApiToken

    with db.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.callback_state != "pending" or not job.status.finished:
            return job.callback_state if job is not None else "gone"
        token = session.get(ApiToken, job.token_id) if job.token_id is not None else None
        if token is None:
            job.callback_state, job.callback_error = "failed", "the submitting token was deleted: nothing to sign with"
            return "failed"
        job.callback_attempts += 1
        attempt = job.callback_attempts
        url, secret, body = job.callback_url, token.webhook_secret, payload(job, base_url)
    try:
        deliver(url, body, secret, policy, timeout)
    except (CallbackFailed, CallbackRefused) as error:
        final = isinstance(error, CallbackRefused) or attempt >= attempts_allowed
        with db.session() as session:
            job = session.get(Job, job_id)
            if job is not None:
                job.callback_error = f"attempt {attempt}: {error}"
                if final:
                    job.callback_state = "failed"
        if final:
            return "failed"
        raise CallbackFailed(str(error)) from None
    with db.session() as session:
        job = session.get(Job, job_id)
        if job is not None:
            job.callback_state, job.callback_error = "delivered", None
    return "delivered"
