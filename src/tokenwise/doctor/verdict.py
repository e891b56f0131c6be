"""Layer 9, the verdict: the first failing layer names the class of the problem, its evidence and its fix."""

from __future__ import annotations

from tokenwise.doctor.model import Layer, Status, Verdict

SKIPPED_WITHOUT_CREDENTIALS = (
    "no failure in the layers examined, but auth, header transit, the credential methods, the connection and "
    "the golden path were skipped: no credentials"
)


def judge(layers: list[Layer], *, credentials: bool) -> Verdict:
    """Healthy, the first failure (layer order is dependency order), or incomplete without credentials."""
    warnings = [
        f"{layer.number}. {layer.title} / {check.name}: {check.summary}"
        for layer in layers
        for check in layer.checks
        if check.status is Status.WARN
    ]
    for layer in layers:
        failure = layer.failure
        if failure is not None:
            return Verdict(
                "failed",
                f"layer {layer.number} ({layer.title}): {failure.summary}",
                fault=failure.fault,
                layer=layer,
                check=failure,
                fix=failure.fix,
                warnings=warnings,
            )
    if not credentials:
        return Verdict(
            "incomplete",
            SKIPPED_WITHOUT_CREDENTIALS,
            fix="run again with --email and --password of an existing user (or --token)",
            warnings=warnings,
        )
    noted = f", with {len(warnings)} warning(s)" if warnings else ""
    return Verdict("healthy", f"every layer passed{noted}", warnings=warnings)
