"""Cloud failures: what kind of error a command or call met, whether retrying can help, and a
stable signature (heal's normalisation) so the same failure is recognised next time."""

from __future__ import annotations

import hashlib
import re

from council.recovery.signature import normalise

# (category, transient, pattern): Azure's error codes and the emulator's / SDK's wording.
_PATTERNS: list[tuple[str, bool, re.Pattern[str]]] = [
    (c, t, re.compile(p, re.IGNORECASE))
    for c, t, p in [
        (
            "auth",
            False,
            r"AuthenticationFailed|AuthorizationFailed|az login|"
            r"InvalidAuthenticationInfo|DefaultAzureCredential failed|no credential|"
            r"CredentialUnavailable|403 Forbidden|AuthorizationPermissionMismatch",
        ),
        ("quota", False, r"QuotaExceeded|quota|limit (?:of|for) .* (?:reached|exceeded)"),
        (
            "name_taken",
            False,
            r"StorageAccountAlreadyTaken|AlreadyExists|already exists|"
            r"ContainerAlreadyExists|BlobAlreadyExists|name .* is (?:already )?taken",
        ),
        (
            "region",
            False,
            r"LocationNotAvailableForResourceType|NoRegisteredProviderFound|"
            r"location .* (?:is not|not) available|InvalidLocation",
        ),
        (
            "sku",
            False,
            r"SkuNotAvailable|SkuNotSupported|InvalidSku|sku .* not (?:allowed|"
            r"available|supported)|RequestDisallowedByPolicy",
        ),
        (
            "not_found",
            False,
            r"ResourceNotFound|ContainerNotFound|ResourceGroupNotFound|"
            r"BlobNotFound|not found|does not exist",
        ),
        (
            "invalid",
            False,
            r"InvalidResourceName|InvalidParameter|OutOfRangeInput|"
            r"InvalidInput|invalid",
        ),
        (
            "transient",
            True,
            r"timed? ?out|Timeout|ServerBusy|ServiceUnavailable|503|502|500 |"
            r"InternalError|OperationTimedOut|TooManyRequests|429|throttl|temporarily|"
            r"Connection (?:refused|reset|aborted)|ConnectionError|RemoteDisconnected",
        ),
    ]
]


class CloudFailure(Exception):
    """An action failed; `category` and `transient` decide retry, fallback or stop."""

    def __init__(self, message: str, *, category: str | None = None, transient: bool | None = None):
        super().__init__(message)
        self.message = message
        found_category, found_transient = classify(message)
        self.category = category or found_category
        self.transient = found_transient if transient is None else transient
        self.rolled_back: list[str] = []  # what the executor removed after this failure

    @property
    def signature(self) -> str:
        return failure_signature(self.category, self.message)


class StrategyUnavailable(Exception):
    """A strategy cannot run here (its tool is not installed, no credentials, ...)."""


def classify(text: str) -> tuple[str, bool]:
    """The first category whose pattern the text matches; unknown errors are not retried."""
    for category, transient, pattern in _PATTERNS:
        if pattern.search(text):
            return category, transient
    return "unknown", False


def failure_signature(category: str, message: str) -> str:
    """Stable across runs: names, ids, times and numbers are placeholders (heal's rules)."""
    body = normalise(message)
    body = re.sub(r"'[^']*'|\"[^\"]*\"", "'<name>'", body)
    return hashlib.sha256(f"cloud\x1f{category}\x1f{body}".encode()).hexdigest()[:16]


ADVICE = {
    "auth": "sign in (`az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET) "
    "and check the role assignment on the subscription or the storage account",
    "quota": "ask for a higher quota or choose another region or size",
    "name_taken": "choose another name: storage account names are global across Azure",
    "region": "choose a region where the resource type is offered",
    "sku": "choose a SKU the subscription and region allow (policy or capacity)",
    "not_found": "check the names: the resource or its parent does not exist",
    "invalid": "check the names and parameters against Azure's rules",
    "transient": "retry later: the service was busy or unreachable",
    "unknown": "read the error; nothing known matches it",
}
