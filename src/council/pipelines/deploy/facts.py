"""The deploy flow's events built from what its parts hand back (one place for each shape)."""

from __future__ import annotations

from council.events import DeployDiagnosed, HealthChecked
from council.personas.schemas import DeploymentDiagnosis
from council.pipelines.deploy.known import KnownFailure
from council.targets.base import HealthReport


def health_checked(report: HealthReport) -> HealthChecked:
    return HealthChecked(
        url=report.url,
        healthy=report.healthy,
        attempts=report.attempts,
        elapsed_s=report.elapsed_s,
        status_code=report.status_code,
        exit_code=report.exit_code,
        error=report.error,
    )


def known_diagnosis(known: KnownFailure) -> DeployDiagnosed:
    return DeployDiagnosed(
        source="known",
        category=known.category,
        cause=known.cause,
        evidence=known.evidence,
        fix=known.recovery or "a code or configuration change",
    )


def model_diagnosis(diagnosis: DeploymentDiagnosis) -> DeployDiagnosed:
    return DeployDiagnosed(
        source="model",
        category=diagnosis.category,
        cause=diagnosis.cause,
        evidence=diagnosis.evidence,
        fix=diagnosis.fix,
    )
