"""Redaction of secret-looking text, applied where outside text enters aksdiag (projection,
capture, what users type) and where text leaves it (findings, logs, Slack).

By construction, not by denylist of places: every free-text string goes through `redact_text`,
which masks
- URL userinfo (`https://[REDACTED]@dev.azure.com`, `redis://[REDACTED]@cache`) and the value of
  every URL query parameter (`GET /healthz?access_token=[REDACTED]`);
- the value after a secret-ish key whatever the separator and quoting (`KEY=v`, `KEY: v`,
  `"KEY": "v"`, `--key v`), the key's words split on `_`, `-`, `.` and camelCase;
- `Bearer`/`Basic`/`SharedKey` credentials, JWTs of any segment length (`alg: none` too), PEM
  private keys, Go DSNs (`user:pass@tcp(...)`);
- the well-known token formats of `TOKEN_FORMATS` (one table, one test per row);
- long high-entropy runs (a storage key, an unknown API key), while ids made of hex digits only
  (container and sandbox ids, sha256 digests, git commits) and paths stay readable.

Every pattern runs in linear time: no nested quantifiers that can backtrack (possessive
quantifiers and atomic groups where a run could be re-scanned), and the text is capped at
`MAX_TEXT` characters before any pattern runs (`cap`, which says that it truncated).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"
MAX_TEXT = 20_000  # default cap for one free-text value before any regex runs
_CUT_BACK = 200  # a cut never leaves half a word (half a token) at the end

# ---------------------------------------------------------------- well-known token formats
# (name, pattern) — one row per format; tests/test_security_secrets.py has one fake per row.
TOKEN_FORMATS: tuple[tuple[str, str], ...] = (
    ("slack token", r"xox[abposre]-[0-9A-Za-z-]{10,}+"),
    ("slack app token", r"xapp-\d-[0-9A-Za-z-]{10,}+"),
    ("github token", r"gh[pousr]_[0-9A-Za-z]{20,}+"),
    ("github fine-grained pat", r"github_pat_[0-9A-Za-z_]{20,}+"),
    ("gitlab pat", r"gl(?:pat|dt|rt|cbt|ptt|oas)-[0-9A-Za-z_-]{20,}+"),
    ("npm token", r"npm_[0-9A-Za-z]{30,}+"),
    ("pypi token", r"pypi-AgE[0-9A-Za-z_-]{30,}+"),
    ("docker hub pat", r"dckr_pat_[0-9A-Za-z_-]{20,}+"),
    ("stripe key", r"(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}+"),
    ("sendgrid key", r"SG\.[0-9A-Za-z_-]{16,}+\.[0-9A-Za-z_-]{16,}+"),
    ("openai key", r"sk-(?:proj-|svcacct-|admin-|ant-)?[0-9A-Za-z_-]{20,}+"),
    ("hashicorp vault token", r"hv[sbr]\.[0-9A-Za-z_-]{20,}+"),
    ("aad client secret", r"(?<![0-9A-Za-z_~.-])[0-9A-Za-z_.-]{3}[78]Q~[0-9A-Za-z_~.-]{20,}+"),
    ("aws access key", r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    ("google api key", r"AIza[0-9A-Za-z_-]{35}"),
    ("shopify token", r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}"),
    ("twilio key", r"(?<![0-9A-Za-z])SK[0-9a-f]{32}(?![0-9A-Za-z])"),
    ("mailgun key", r"key-[0-9a-z]{32}"),
    (
        "azure devops pat",
        r"(?<![0-9A-Za-z])(?:[a-z2-7]{52}|[0-9A-Za-z]{76}AZDO[0-9A-Za-z]{4})(?![0-9A-Za-z])",
    ),
    ("telegram bot token", r"(?<![0-9A-Za-z])\d{8,10}:AA[0-9A-Za-z_-]{32,}+"),
    (
        "slack webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers|commands|actions)/[0-9A-Za-z/_%-]{8,}+",
    ),
    ("jwt", r"(?<![0-9A-Za-z_-])eyJ[0-9A-Za-z_-]*+(?>\.[0-9A-Za-z_-]*+){1,4}"),
    (
        "pem private key",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?>[^-]++|-(?!----END))*+(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
    ),
)
_TOKENS = re.compile("|".join(f"(?:{p})" for _, p in TOKEN_FORMATS))

# ---------------------------------------------------------------- secret-ish keys
_KEY_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "auth",
        "apikey",
        "key",
        "keys",
        "sig",
        "signature",
        "sas",
        "credential",
        "credentials",
        "connectionstring",
        "connstr",
        "privatekey",
        "accesskey",
        "accountkey",
        "sharedaccesskey",
        "sharedaccesssignature",
        "clientsecret",
        "cookie",
        "dsn",
    }
)
# A key whose last word says it names or describes a secret, not holds it, stays readable.
_NOT_A_VALUE = frozenset(
    {
        "name",
        "names",
        "id",
        "ids",
        "ref",
        "path",
        "file",
        "type",
        "kind",
        "count",
        "length",
        "ttl",
        "version",
        "expiry",
        "expires",
        "expiration",
        "seconds",
        "url",
        "uri",
        "endpoint",
        "vault",
        "provider",
        "header",
        "format",
        "mode",
        "enabled",
        "source",
    }
)
_WORD_SPLIT = re.compile(r"[^0-9A-Za-z]++|(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(key: str) -> bool:
    """True for a field name that says it holds a secret (env var names, ConfigMap keys,
    `key=` in free text): one of its words (split on `_ - .` and camelCase) is a secret word,
    or the whole key squashed is one (`ApiKey`, `AccountKey`, `client_secret`)."""
    if len(key) > 128:
        key = key[:128]
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if not words or words[-1] in _NOT_A_VALUE:
        return False
    squashed = "".join(words)
    return any(w in _KEY_WORDS for w in words) or any(
        s in squashed
        for s in (
            "password",
            "secret",
            "token",
            "apikey",
            "accesskey",
            "privatekey",
            "connectionstring",
            "credential",
            "accountkey",
        )
    )


# ---------------------------------------------------------------- structural patterns
# `scheme://userinfo@` -> `scheme://[REDACTED]@`
_USERINFO = re.compile(
    r"(?<![0-9A-Za-z+.-])([A-Za-z][0-9A-Za-z+.-]{0,30}+://)([^\s/@?#\"'<>]{1,512}+)@"
)
# `?k=v&k2=v2`: every query value
_QUERY = re.compile(r"((?<!\[)[?&][0-9A-Za-z_.~%+\[\]-]{1,128}+=)([^\s&#\"'<>`=][^\s&#\"'<>`]*+)")
# Go DSN and other scheme-less `user:pass@host`
_DSN = re.compile(
    r"(?<![0-9A-Za-z_.:/-])([0-9A-Za-z_.-]{1,128}+:)([^\s@/:\"']{1,256}+)@(?!sha256:|sha512:)(?=[0-9A-Za-z\[(])"
)
# `Authorization: Bearer x`, `Basic x`, `SharedKey acct:sig`
_SCHEME_CRED = re.compile(
    r"(?i)\b(bearer|basic|sharedkey|sharedaccesssignature)([ \t]++)([0-9A-Za-z._~+/=:%&-]{8,}+)"
)
# key (optionally quoted) then `=` or `:`; the value is read only after a secret-ish key, so a
# harmless `said: ...` never swallows the `_authToken=...` that follows it
_KEY_SEP = re.compile(
    r"(?<![0-9A-Za-z_.-])([A-Za-z_@$][0-9A-Za-z_.-]{0,127}+)([\"']?+[ \t]*+[:=][ \t]*+)"
)
_VALUE = re.compile(r"\"[^\"\n]*+\"|'[^'\n]*+'|[^\s\"',;&)}\]]++")
# `--flag value` / `-flag=value` on command lines
_FLAG = re.compile(
    r"(?<![0-9A-Za-z_-])(--?[A-Za-z][0-9A-Za-z_.-]{0,127}+)([ \t]++)([^\s\"'-][^\s\"']*+)"
)
# candidate high-entropy runs (base64 and base64url); `_looks_random` decides
_RUN = re.compile(r"(?<![0-9A-Za-z+/_-])[0-9A-Za-z+/_-]{32,}+=*+")
_HEX = re.compile(r"[0-9A-Fa-f-]++")
_SEPARATORS = re.compile(r"[/_-]++")
_CAMEL = re.compile(r"[A-Za-z][a-z]++(?:[A-Z][a-z]++)*+")
# our own commands' `?limit=1`, `api-version=2024-09-01`: values no secret can take
_HARMLESS_QUERY = re.compile(r"\d{1,6}|true|false|\d{4}-\d{2}-\d{2}(?:-preview)?")


def _mixed(text: str) -> bool:
    return (
        any(c.isdigit() for c in text)
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
    )


def _benign_part(part: str) -> bool:
    """A path segment a person wrote: short, a camelCase word, an id, or not mixed-case."""
    return (
        len(part) < 6
        or bool(_CAMEL.fullmatch(part))
        or bool(_HEX.fullmatch(part))
        or not _mixed(part)
    )


def _looks_random(run: str) -> bool:
    """A long run that is a key rather than a name, a path or a hex id: mixed case and digits
    (or base64 padding) in a part that is not a word, a short name or a hex id."""
    core = run.rstrip("=")
    if len(core) < 32:
        return False
    parts = [p for p in _SEPARATORS.split(core) if p]
    if all(_benign_part(p) for p in parts):
        return False  # /subscriptions/ID/resourceGroups/NAME, containerd://HEX, AKSUbuntu-2204...
    return _mixed(core) or (run.endswith("=") and not core.isalpha())


def _mask_value(value: str) -> str:
    if value[:1] in "\"'" and len(value) >= 2 and value[-1] == value[0]:
        return value[0] + MASK + value[0] if len(value) > 2 else value
    return MASK


def _mask_key_values(text: str) -> str:
    """`KEY=v`, `KEY: v`, `"KEY": "v"`, `'KEY'='v'` with a secret-ish KEY -> the value masked."""
    out: list[str] = []
    last = 0
    for m in _KEY_SEP.finditer(text):
        if m.start() < last or not is_secret_key(m.group(1).lstrip("@$")):
            continue
        value = _VALUE.match(text, m.end())
        if value is None:
            continue
        bare = value.group(0).strip("\"'")
        if not bare or bare.startswith("[REDACTED") or bare.lower() in _NOT_SECRET_VALUES:
            continue
        out += [text[last : m.end()], _mask_value(value.group(0))]
        last = value.end()
    return "".join(out) + text[last:] if out else text


def _sub_flag(m: re.Match[str]) -> str:
    if not is_secret_key(m.group(1).lstrip("-")) or m.group(3).startswith("[REDACTED"):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{MASK}"


def _sub_query(m: re.Match[str]) -> str:
    value = m.group(2)
    if value.startswith("[REDACTED") or _HARMLESS_QUERY.fullmatch(value):
        return m.group(0)
    return f"{m.group(1)}{MASK}"


def _sub_run(m: re.Match[str]) -> str:
    return MASK if _looks_random(m.group(0)) else m.group(0)


_NOT_SECRET_VALUES = ("bearer", "basic", "null", "none")
_STEPS: tuple[tuple[re.Pattern[str] | None, Any], ...] = (
    (_TOKENS, MASK),
    (_USERINFO, rf"\1{MASK}@"),
    (_DSN, rf"\1{MASK}@"),
    (_SCHEME_CRED, rf"\1\2{MASK}"),
    (_QUERY, _sub_query),
    (None, _mask_key_values),
    (_FLAG, _sub_flag),
    (_RUN, _sub_run),
)


def cap(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to about `limit` characters, saying so; the cut goes back to a space (up to
    200 characters) so it never leaves the first half of a token behind."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = max(head.rfind(" ", limit - _CUT_BACK), head.rfind("\n", limit - _CUT_BACK))
    head = head[:space] if space > 0 else head[: max(0, limit - _CUT_BACK)]
    return f"{head} …[truncated {len(text) - len(head):,} characters]"


def redact_text(text: str, limit: int | None = MAX_TEXT) -> str:
    """Mask every secret-looking run in `text`, capped at `limit` characters first (None: no
    cap, for callers that capped already). Linear in the length of the text."""
    if not text:
        return text
    if limit is not None:
        text = cap(text, limit)
    for pattern, repl in _STEPS:
        text = pattern.sub(repl, text) if pattern is not None else repl(text)
    return text


def redact_mapping(data: Mapping[str, str], limit: int = MAX_TEXT) -> dict[str, str]:
    """A copy of `data` with values under secret-looking keys masked and the rest redacted;
    keys are redacted too (a label key can carry a token)."""
    return {
        redact_text(str(k), 256): (
            MASK
            if is_secret_key(str(k)) and v
            else redact_text(v if isinstance(v, str) else str(v), limit)
        )
        for k, v in data.items()
    }
