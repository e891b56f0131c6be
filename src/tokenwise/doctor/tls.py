"""Layer 2, TLS (https/wss only): chain, host name, expiry and protocol version of the certificate served."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from tokenwise.doctor.context import Context
from tokenwise.doctor.model import Check, Fault, Layer, failed, passed, skipped, warned

_EXPIRES_SOON_DAYS = 14
_MODERN = ("TLSv1.2", "TLSv1.3")
# OpenSSL verify codes (X509_V_ERR_*) and what they mean for the operator.
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = (62, 64)  # host name, IP address
_UNTRUSTED = (2, 18, 19, 20, 21)
_LOOPBACK_NAMES = {"localhost"}


async def check(ctx: Context, layer: Layer) -> None:
    if not ctx.target.tls:
        if _is_local(ctx.target.host):
            layer.add(skipped("tls", "plain HTTP on a loopback address: no TLS to check"))
        else:
            layer.add(
                warned(
                    "tls",
                    f"plain HTTP to {ctx.target.host}: passwords and tokens cross the network unencrypted",
                    fix="serve the deployment over https (terminate TLS at the proxy or load balancer)",
                )
            )
        return
    started = time.perf_counter()
    try:
        details = await _handshake(ctx, ctx.tls_context)
    except ssl.SSLCertVerificationError as exc:
        layer.add(await _verification_failed(ctx, exc)).duration_ms = _ms(started)
        ctx.halted = "the TLS certificate does not verify"
        return
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        layer.add(
            failed(
                "handshake",
                f"the TLS handshake with {ctx.target.host}:{ctx.target.port} failed: {_reason(exc)}",
                Fault.INFRASTRUCTURE,
                "make sure this port serves TLS (not plain HTTP) with a current protocol version; check the "
                "certificate and key configured at the proxy or load balancer",
            )
        ).duration_ms = _ms(started)
        ctx.halted = "no TLS handshake"
        return
    elapsed = _ms(started)
    chain = passed(
        "certificate",
        f"valid for {ctx.target.host}, issued by {details['issuer']}"
        + (f" (trusting only {ctx.options.ca_file})" if ctx.options.ca_file else ""),
        **details,
    )
    chain.duration_ms = elapsed
    layer.add(chain)
    layer.add(_expiry(details))
    layer.add(_protocol(details))


async def _handshake(ctx: Context, context: ssl.SSLContext) -> dict[str, Any]:
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            ctx.target.host, ctx.target.port, ssl=context, server_hostname=ctx.target.host
        ),
        ctx.options.timeout_s,
    )
    try:
        tls: ssl.SSLObject = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)
        details = _describe(der) if der else {}
        cipher = tls.cipher()
        details.update(protocol=tls.version(), cipher=cipher[0] if cipher else None)
        return details
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _verification_failed(ctx: Context, exc: ssl.SSLCertVerificationError) -> Check:
    """Name why the certificate does not verify; read it without verification for the evidence."""
    details: dict[str, Any] = {"verify_code": exc.verify_code, "verify_message": exc.verify_message}
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    with contextlib.suppress(ssl.SSLError, OSError, TimeoutError):
        details.update(await _handshake(ctx, unverified))
    host = ctx.target.host
    if exc.verify_code == _EXPIRED:
        name = "expiry"
        summary = f"the certificate expired on {details.get('not_after', '?')}"
        fix = "renew the certificate (and automate renewal, e.g. ACME/cert-manager) and reload the proxy"
    elif exc.verify_code == _NOT_YET_VALID:
        name = "expiry"
        summary = f"the certificate is not valid before {details.get('not_before', '?')}"
        fix = "check the clock of this machine and of the server; reissue the certificate if it is wrong"
    elif exc.verify_code in _NAME_MISMATCH:
        name = "hostname"
        names = ", ".join(details.get("names", [])) or "?"
        summary = f"the certificate is for {names}, not for {host}"
        fix = f"serve a certificate whose subjectAltName includes {host}, or use the URL of a name it covers"
    elif exc.verify_code in _UNTRUSTED:
        name = "chain"
        summary = f"the certificate chain is not trusted: {exc.verify_message}"
        fix = (
            "serve the full chain (leaf + intermediates) at the proxy; for a private CA pass "
            "`--ca ca.pem` here and install the CA on every client"
        )
    else:
        name = "chain"
        summary = f"the certificate does not verify: {exc.verify_message}"
        fix = "check the certificate and chain served for this host"
    return failed(name, summary, Fault.INFRASTRUCTURE, fix, **details)


def _expiry(details: dict[str, Any]) -> Check:
    not_after = details.get("not_after")
    if not not_after:
        return skipped("expiry", "the certificate's validity could not be read")
    days = (datetime.fromisoformat(not_after) - datetime.now(UTC)).days
    if days < _EXPIRES_SOON_DAYS:
        return warned(
            "expiry",
            f"the certificate expires in {days} day(s), on {not_after}",
            fix="renew it now, and automate renewal",
            days_left=days,
        )
    return passed("expiry", f"valid for {days} more days (until {not_after})", days_left=days)


def _protocol(details: dict[str, Any]) -> Check:
    version = details.get("protocol")
    if version in _MODERN:
        return passed("protocol", f"{version}, {details.get('cipher')}", protocol=version)
    return failed(
        "protocol",
        f"negotiated {version}, older than TLS 1.2",
        Fault.INFRASTRUCTURE,
        "enable TLS 1.2 and 1.3 at the proxy or load balancer and disable older versions",
        protocol=version,
    )


def _describe(der: bytes) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "names": names,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _is_local(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
