"""Redaction of secret-looking text, applied where cluster data enters aksdiag (projection,
capture) and where text leaves it (logs, Slack). Patterns follow the real formats."""

from __future__ import annotations

import re
from collections.abc import Mapping

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
    # PEM private keys.
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    # Long base64 blobs (88-char storage account keys end in ==).
    re.compile(r"\b[0-9A-Za-z+/]{40,}={0,2}(?=$|[\s\"',;])"),
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
