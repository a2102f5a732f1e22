"""Redaction of secret-looking text, applied where cluster data enters aksdiag (projection,
capture) and where text leaves it (logs, Slack). Patterns follow the real formats."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Slack tokens: xoxb-, xoxp-, xoxa-, xoxs-, xapp- (app-level), and signing-secret-like hex.
    re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    re.compile(r"\bxapp-\d-[0-9A-Za-z-]{10,}"),
    # JSON Web Tokens (AAD access tokens, service account tokens).
    re.compile(r"\beyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}"),
    # Authorization headers.
    re.compile(r"(?i)\b(bearer|basic)\s+[0-9A-Za-z._~+/=-]{16,}"),
    # Azure connection strings and keys: AccountKey=..., SharedAccessKey=..., sig=...
    re.compile(
        r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|password|pwd|secret|"
        r"client_secret|api[_-]?key|access[_-]?key|token)\s*[=:]\s*[^\s;,&\"']{6,}"
    ),
    # Redis / database URLs with a password: scheme://user:pass@host
    re.compile(r"\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]{3,}(@)"),
    # AWS-style and generic GitHub tokens (people paste them in env values too).
    re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    # Slack incoming webhooks, workflow triggers and response URLs: the URL is the credential.
    re.compile(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers|commands|actions)/"
        r"[0-9A-Za-z/_%-]{8,}"
    ),
    # PEM private keys.
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    # Long base64 blobs (88-char storage account keys end in ==). A run of hex digits only is an
    # id, not a key (container and sandbox ids in CNI events, sha256 digests, git commits): the
    # run must hold a character outside [0-9a-fA-F] to be masked.
    re.compile(r"\b(?=[0-9A-Za-z+/]*[g-zG-Z+/])[0-9A-Za-z+/]{40,}={0,2}(?=$|[\s\"',;])"),
)

_SECRET_KEY = re.compile(
    r"(?i)(passw|secret|token|apikey|api_key|api-key|access_key|accountkey|connection_?string|"
    r"credential|private_?key|sas|signature|auth)"
)


def _sub(match: re.Match[str]) -> str:
    text = match.group(0)
    # Keep the key of key=value and the scheme/user of URLs so the text still reads.
    if match.re.groups >= 2 and match.group(2) == "@":
        return f"{match.group(1)}{MASK}@"
    for sep in ("=", ":"):
        if sep in text and match.re.pattern.startswith("(?i)\\b(AccountKey"):
            key = text.split(sep, 1)[0]
            return f"{key}{sep}{MASK}"
    if match.re.pattern.startswith("(?i)\\b(bearer"):
        return f"{match.group(1)} {MASK}"
    return MASK


def redact_text(text: str) -> str:
    """Mask every secret-looking run in `text`."""
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(_sub, text)
    return text


def is_secret_key(key: str) -> bool:
    """True for a field name that says it holds a secret (env var names, ConfigMap keys)."""
    return bool(_SECRET_KEY.search(key))


def redact_mapping(data: Mapping[str, str]) -> dict[str, str]:
    """A copy of `data` with values under secret-looking keys masked and the rest scrubbed."""
    return {
        k: (MASK if is_secret_key(k) and v else redact_text(v if isinstance(v, str) else str(v)))
        for k, v in data.items()
    }


# ---------------------------------------------------------------- Kubernetes objects (capture)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _redact_container(c: dict[str, Any]) -> None:
    for var in c.get("env") or ():
        if isinstance(var, dict) and isinstance(var.get("value"), str):
            name = str(var.get("name", ""))
            var["value"] = (
                MASK if is_secret_key(name) and var["value"] else redact_text(var["value"])
            )
    for key in ("command", "args"):
        if isinstance(c.get(key), list):
            c[key] = [redact_text(a) if isinstance(a, str) else a for a in c[key]]


def _walk(value: Any) -> None:
    """Containers anywhere (pods, templates), and every `message`, scrubbed in place."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _CONTAINER_LISTS and isinstance(item, list):
                for c in item:
                    if isinstance(c, dict):
                        _redact_container(c)
            if key in ("message", "note") and isinstance(item, str):
                value[key] = redact_text(item)
            else:
                _walk(item)
    elif isinstance(value, list):
        for item in value:
            _walk(item)


def redact_k8s_object(obj: dict[str, Any]) -> dict[str, Any] | None:
    """A Kubernetes object made safe to write into a snapshot, or None for a Secret.

    Env values (masked outright under secret-looking names), command lines, annotations
    (`last-applied-configuration` masked whole: it repeats the object, env and data included),
    ConfigMap data, event and status messages are scrubbed; managedFields are dropped. The
    object is changed in place and returned.
    """
    if obj.get("kind") == "Secret":
        return None
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            clean = redact_mapping({str(k): str(v) for k, v in annotations.items()})
            if LAST_APPLIED in clean:
                clean[LAST_APPLIED] = MASK
            meta["annotations"] = clean
    if obj.get("kind") == "ConfigMap":
        if isinstance(obj.get("data"), dict):
            obj["data"] = redact_mapping({str(k): str(v) for k, v in obj["data"].items()})
        if isinstance(obj.get("binaryData"), dict):
            obj["binaryData"] = dict.fromkeys(obj["binaryData"], MASK)
    _walk(obj)
    return obj
