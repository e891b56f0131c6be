"""What the doctor knows about failures: which class each symptom belongs to, and the likely fix."""

from __future__ import annotations

from dataclasses import dataclass

from tokenwise.doctor.context import Answer
from tokenwise.doctor.model import Fault
from tokenwise.doctor.probe import Outcome

# The `reason` of a 401 from the API (docs/protocol.md, "Token verification") → the likely fix.
AUTH_REASONS: dict[str, str] = {
    "unknown_key": (
        "the API verifies tokens against other keys than the auth service signs with: point "
        "TOKENWISE_AUTH_URL of every API process at this auth service, and give every auth process the same "
        "key files (TOKENWISE_KEY_DIR)"
    ),
    "issuer_mismatch": (
        "set TOKENWISE_JWT_ISSUER to the same value on the auth service and on every API process"
    ),
    "audience_mismatch": (
        "set TOKENWISE_JWT_AUDIENCE to the same value on the auth service and on every API process"
    ),
    "signature": (
        "two auth processes publish different keys under the same kid: give every auth process the same key "
        "files"
    ),
    "algorithm": "the token was not signed with ES256: it does not come from a Tokenwise auth service",
    "expired": "the token expired on arrival: the clocks of the auth service and the API disagree (run NTP)",
    "invalid": "the auth service issues tokens the API cannot read: run the same Tokenwise version on both",
    "malformed": "the credential arrived damaged: a proxy rewrites the Authorization header",
}
CONFIGURATION_REASONS = frozenset(AUTH_REASONS) - {"malformed"}


@dataclass(frozen=True)
class Diagnosis:
    fault: Fault
    summary: str
    fix: str


def unexpected_answer(answer: Answer, what: str) -> Diagnosis:
    """Why `what` (e.g. "GET /health") got this answer instead of the expected one."""
    error, status = answer.error, answer.status
    code = str(error.get("code", ""))
    if code == "internal_error":
        error_id = error.get("error_id", "?")
        return Diagnosis(
            Fault.APPLICATION,
            f"{what} answered {status} internal_error (error_id {error_id})",
            f"a server bug: search the server log for error_id={error_id}; its traceback is there",
        )
    if status == 401 and error.get("reason") == "missing":
        return Diagnosis(
            Fault.INFRASTRUCTURE,
            f"{what} answered 401 missing: the Authorization header sent with it never arrived",
            "a proxy on the way strips Authorization: make it pass the header unchanged",
        )
    if code == "service_unavailable":
        return dependency_down(
            str(error.get("dependency") or ""), f"{what} answered {status}: {error.get('message')}"
        )
    if error:
        return Diagnosis(
            Fault.CONFIGURATION,
            f"{what} answered {status} {code}: {error.get('message', '')}",
            "check the settings of the Tokenwise process behind this URL (its role and routes)",
        )
    if status in (502, 503, 504):
        return Diagnosis(
            Fault.INFRASTRUCTURE,
            f"{what} answered {status} from something that is not Tokenwise ({_server(answer)}): a proxy "
            "cannot reach the application",
            "check the proxy's upstream address and port, and that the Tokenwise process is running there",
        )
    return Diagnosis(
        Fault.INFRASTRUCTURE,
        f"{what} answered {status} from something that is not Tokenwise ({_server(answer)}): "
        f"{answer.snippet(80)!r}",
        "route this path to Tokenwise at the proxy or load balancer (or fix the URL's path prefix)",
    )


def dependency_down(dependency: str, summary: str) -> Diagnosis:
    if dependency == "auth":
        return Diagnosis(
            Fault.CONFIGURATION,
            summary,
            "the API cannot fetch the auth service's keys: check TOKENWISE_AUTH_URL on the API and that the "
            "auth service answers there (/health/ready names the URL it tries)",
        )
    return Diagnosis(
        Fault.INFRASTRUCTURE,
        summary,
        "the application cannot reach its database: check TOKENWISE_DATABASE_URL, the database server and "
        "the network between them",
    )


def _server(answer: Answer) -> str:
    server = answer.headers.get("server")
    return f"Server: {server}" if server else "no Server header"


UPGRADE_FIX = (
    "the proxy must forward the upgrade: HTTP/1.1 to the backend with Upgrade and Connection passed on "
    "(nginx: `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "
    "$connection_upgrade;`); on a load balancer, enable WebSockets for this route"
)


def bug_fix(reason: str | None) -> str:
    """The fix line of a 1011 `internal_error:<error_id>`."""
    error_id = error_id_of(reason) or "?"
    return f"a server bug: search the server log for error_id={error_id}; its traceback is there"


def error_id_of(reason: str | None) -> str | None:
    _, marker, error_id = (reason or "").partition("internal_error:")
    return error_id.strip() or None if marker else None


def refused_upgrade(outcome: Outcome, origin: str, host_seen: str | None = None) -> Diagnosis:
    """Why a WebSocket handshake did not end with a welcome frame."""
    if outcome.status == 404 and outcome.from_tokenwise:
        return Diagnosis(
            Fault.INFRASTRUCTURE,
            "Upgrade and Connection did not reach the application: GET /ws was answered as a plain HTTP "
            "request (404 not_found) instead of 101",
            UPGRADE_FIX,
        )
    if outcome.status == 403 and outcome.reason == "origin":
        seen = f" (the application sees Host {host_seen})" if host_seen else ""
        return Diagnosis(
            Fault.CONFIGURATION,
            f"the API refuses the Origin {origin}{seen}",
            f"add {origin} to TOKENWISE_ALLOWED_ORIGINS, or forward Host unchanged at the proxy "
            "(nginx: `proxy_set_header Host $http_host;`)",
        )
    if outcome.status == 401 and outcome.reason in AUTH_REASONS:
        reason = str(outcome.reason)
        fault = Fault.INFRASTRUCTURE if reason == "malformed" else Fault.CONFIGURATION
        return Diagnosis(
            fault, f"the upgrade was refused: 401 {reason} ({outcome.message})", AUTH_REASONS[reason]
        )
    if outcome.status == 503 and outcome.from_tokenwise:
        return dependency_down("", f"the upgrade was refused: 503 {outcome.message}")
    if outcome.close_code == 1011:
        error_id = error_id_of(outcome.close_reason)
        return Diagnosis(
            Fault.APPLICATION,
            f"the connection closed with 1011 {outcome.close_reason}"
            + (f" (error_id {error_id})" if error_id else ""),
            bug_fix(outcome.close_reason),
        )
    if outcome.close_code == 4401:
        return Diagnosis(
            Fault.CONFIGURATION,
            f"the server refused the token: close 4401 {outcome.close_reason}",
            "check that the API and the auth service agree on keys, issuer and audience (layer 4)",
        )
    if outcome.status is not None and outcome.status != 101:
        by = (
            "" if outcome.from_tokenwise else f" by something that is not Tokenwise ({outcome.server or '?'})"
        )
        return Diagnosis(
            Fault.INFRASTRUCTURE if not outcome.from_tokenwise else Fault.APPLICATION,
            f"the upgrade was answered {outcome.status} instead of 101{by}: {outcome.message[:100]}",
            UPGRADE_FIX if not outcome.from_tokenwise else "see the server log",
        )
    if outcome.close_code is not None:
        return Diagnosis(
            Fault.INFRASTRUCTURE,
            f"the connection closed before the welcome frame: {outcome.close_code} {outcome.close_reason}",
            "a proxy cut the connection: check its WebSocket support and timeouts",
        )
    return Diagnosis(
        Fault.INFRASTRUCTURE,
        f"the WebSocket did not open: {outcome.unreachable or outcome.message}",
        UPGRADE_FIX,
    )
