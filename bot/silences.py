"""Silences: "stop telling me about CODE on CLUSTER (for SUBJECT) for a while, because...".

A silence names a finding code on one cluster, optionally one subject (no subject = every
subject), and lasts a bounded time: `DEFAULT_DURATION_S` (24h) unless the user says `for 2h`,
never more than `MAX_DURATION_S` (30d) — a silence that outlives everyone's memory hides a
problem for good.

A reason is required (`-- why`), as Alertmanager's amtool requires a comment: whoever meets
the silenced finding later sees who silenced it, why and until when, and the audit log keeps
it. The reason is redacted (token formats) and capped at `MAX_REASON` characters.

Redis keeps them: one key per silence (`aksdiag:silence:<cluster>:<code>:<subject hash | *>`,
JSON, with a TTL that ends with the silence, so expired silences vanish by themselves) and an
index `aksdiag:silences` (a sorted set scored by the end time) so listing never SCANs.
Every add and remove writes one structured line to the `aksdiag.audit` logger.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis

from diagnostics.checks import default_registry
from diagnostics.model import Finding
from diagnostics.redact import redact_text
from diagnostics.scenarios import UsageError, suggest, validate_cluster_name

DEFAULT_DURATION_S = 24 * 3600
MIN_DURATION_S = 60
MAX_DURATION_S = 30 * 24 * 3600
MAX_REASON = 300
MAX_SUBJECT = 512
PREFIX = "aksdiag:silence"
INDEX = "aksdiag:silences"
PROBE_FAMILY = "apiserver.probe."

audit = logging.getLogger("aksdiag.audit")

SILENCE_USAGE = "silence CODE CLUSTER [SUBJECT] [for DURATION] -- REASON"
UNSILENCE_USAGE = "unsilence CODE CLUSTER [SUBJECT]"
_EXAMPLE = "silence podip.ip-leak prod for 2h -- known leak, fix rolling out (INC-1234)"

_UNITS = {
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "wks": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION_PART = re.compile(r"(\d{1,6})([a-z]+)")
_SUBJECT = re.compile(r"[A-Za-z0-9_./:@=+-]+")
_CODE = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
_DASHES = ("--", "—", "–")


@dataclass(frozen=True, slots=True)
class Silence:
    """One active silence. `subject` None silences every subject of the code on the cluster."""

    cluster: str
    code: str
    subject: str | None
    reason: str
    created_by: str
    created_at: float
    until: float

    def matches(self, finding: Finding) -> bool:
        return finding.code == self.code and (
            self.subject is None or finding.subject.casefold() == self.subject.casefold()
        )

    @property
    def key(self) -> str:
        return silence_key(self.cluster, self.code, self.subject)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Silence:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            cluster=str(data["cluster"]),
            code=str(data["code"]),
            subject=data.get("subject"),
            reason=str(data.get("reason", "")),
            created_by=str(data.get("created_by", "")),
            created_at=float(data.get("created_at", 0.0)),
            until=float(data["until"]),
        )


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    """A validated `silence` command."""

    code: str
    cluster: str
    subject: str | None
    duration_s: int
    reason: str


@dataclass(frozen=True, slots=True)
class UnsilenceRequest:
    """A validated `unsilence` command."""

    code: str
    cluster: str
    subject: str | None


def silence_key(cluster: str, code: str, subject: str | None) -> str:
    part = "*" if subject is None else hashlib.sha256(subject.casefold().encode()).hexdigest()[:16]
    return f"{PREFIX}:{cluster}:{code}:{part}"


def format_duration(seconds: float) -> str:
    """3600 -> '1h', 93600 -> '1d 2h', 90 -> '1m' (at most two units, rounded down)."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2]) or "0m"


def _audit(event: str, **fields: Any) -> None:
    audit.info(event, extra={"fields": {"audit": True, "event": event, **fields}})


class SilenceStore:
    """Silences in Redis, shared by every replica."""

    def __init__(self, redis: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock

    def add(
        self,
        cluster: str,
        code: str,
        subject: str | None,
        duration_s: int,
        reason: str,
        user: str,
    ) -> Silence:
        """Create or replace the silence of (cluster, code, subject)."""
        if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
            raise ValueError(
                f"a silence lasts {format_duration(MIN_DURATION_S)} to "
                f"{MAX_DURATION_S // 86400}d, not {duration_s}s"
            )
        now = self.clock()
        silence = Silence(
            cluster=cluster,
            code=code,
            subject=subject or None,
            reason=_clean_reason(reason),
            created_by=user,
            created_at=now,
            until=now + duration_s,
        )
        pipe = self.redis.pipeline()
        pipe.set(silence.key, silence.to_json(), ex=duration_s)
        pipe.zadd(INDEX, {silence.key: silence.until})
        pipe.execute()
        _audit(
            "silence.add",
            user=user,
            cluster=cluster,
            code=code,
            subject=silence.subject,
            duration_s=duration_s,
            until=silence.until,
            reason=silence.reason,
        )
        return silence

    def remove(self, cluster: str, code: str, subject: str | None, user: str) -> bool:
        """End the silence of (cluster, code, subject) now; False when there was none."""
        key = silence_key(cluster, code, subject or None)
        pipe = self.redis.pipeline()
        pipe.delete(key)
        pipe.zrem(INDEX, key)
        removed = bool(pipe.execute()[0])
        _audit(
            "silence.remove",
            user=user,
            cluster=cluster,
            code=code,
            subject=subject or None,
            removed=removed,
        )
        return removed

    def list(self, cluster: str | None = None) -> list[Silence]:
        """Active silences (of one cluster, or all), by cluster, code and subject."""
        now = self.clock()
        self.redis.zremrangebyscore(INDEX, "-inf", f"({now}")
        keys: list[bytes | str] = self.redis.zrangebyscore(INDEX, now, "+inf")  # type: ignore[assignment]
        if cluster is not None:
            prefix = f"{PREFIX}:{cluster}:"
            keys = [k for k in keys if _text(k).startswith(prefix)]
        if not keys:
            return []
        values: list[bytes | str | None] = self.redis.mget(keys)
        out: list[Silence] = []
        gone: list[bytes | str] = []
        for key, raw in zip(keys, values, strict=True):
            if raw is None:  # expired by its TTL, or removed meanwhile
                gone.append(key)
                continue
            silence = Silence.from_json(raw)
            if silence.until > now:
                out.append(silence)
        if gone:
            self.redis.zrem(INDEX, *gone)
        return sorted(out, key=lambda s: (s.cluster, s.code, s.subject or ""))

    def split(
        self, cluster: str, findings: Iterable[Finding]
    ) -> tuple[builtins.list[Finding], builtins.list[tuple[Finding, Silence]]]:
        """(findings still shown, (finding, the silence that hides it)). A silence for the
        finding's own subject wins over one for every subject."""
        silences = sorted(self.list(cluster), key=lambda s: s.subject is None)
        kept: builtins.list[Finding] = []
        hidden: builtins.list[tuple[Finding, Silence]] = []
        for finding in findings:
            match = next((s for s in silences if s.matches(finding)), None)
            if match is None:
                kept.append(finding)
            else:
                hidden.append((finding, match))
        return kept, hidden


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _clean_reason(reason: str) -> str:
    text = " ".join(redact_text(reason).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


# Parsing the commands ----------------------------------------------------------------------


@functools.cache
def known_codes() -> tuple[str, ...]:
    """Every finding code a user may silence: the registry's, the probe family included."""
    return tuple(sorted(default_registry().codes()))


def _shown(text: str, limit: int = 60) -> str:
    clean = "".join(ch if ch.isprintable() and ch not in "`*_~<>&" else "?" for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def validate_code(word: str) -> str:
    code = word.strip().lower()
    codes = known_codes()
    if code in codes or (code.startswith(PROBE_FAMILY) and _CODE.fullmatch(code)):
        return code
    family = [c for c in codes if c.startswith(code.rstrip(".") + ".")] if code else []
    if family:
        listed = ", ".join(f"`{c}`" for c in family[:12])
        raise UsageError(f"`{_shown(word)}` is a family of codes; silence one of them: {listed}.")
    raise UsageError(
        f"unknown finding code `{_shown(word)}`.{suggest(code, codes)} Codes are listed in "
        "each finding (for example `podip.ip-leak`) and in the docs."
    )


def parse_duration(text: str) -> int:
    """`30m`, `2h`, `1d`, `1w`, `1h30m`, `2days` -> seconds, within the allowed range."""
    value = text.strip().lower()
    parts = _DURATION_PART.findall(value)
    if (
        not parts
        or "".join(n + u for n, u in parts) != value
        or any(u not in _UNITS for _, u in parts)
    ):
        raise UsageError(
            f"`{_shown(text)}` is not a duration: use minutes, hours, days or weeks such as "
            "`30m`, `2h`, `1d`, `1w` (or `1h30m`)."
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < MIN_DURATION_S:
        raise UsageError("a silence lasts at least 1 minute.")
    if seconds > MAX_DURATION_S:
        raise UsageError(
            f"a silence lasts at most {MAX_DURATION_S // 86400}d ({_shown(text)} asked); "
            "silence it again when it ends if the problem is still accepted."
        )
    return seconds


def _validate_subject(word: str) -> str:
    if len(word) > MAX_SUBJECT or not _SUBJECT.fullmatch(word):
        raise UsageError(
            f"`{_shown(word)}` is not a finding subject: copy it from the finding (for example "
            "`node/aks-nodepool1-12345678-vmss000000` or an Azure resource id)."
        )
    return word


def _strip_verb(tokens: Sequence[str], verb: str) -> list[str]:
    items = [t for t in tokens if t]
    if items and items[0].lower() == verb:
        items = items[1:]
    return items


def _code_and_cluster(items: list[str], usage: str) -> tuple[str, str]:
    if len(items) < 2:
        raise UsageError(
            f"which code and which cluster? Usage: `{usage}`, for example `{_EXAMPLE}`."
        )
    first, second = items[0], items[1]
    try:
        code = validate_code(first)
    except UsageError:
        # `silence prod podip.ip-leak`: the right words in the wrong order.
        if "." in second and second.lower() in known_codes():
            raise UsageError(
                f"the code comes first: `{usage.split()[0]} {second.lower()} {_shown(first)} …`."
            ) from None
        raise
    return code, validate_cluster_name(second)


def _split_reason(tokens: list[str]) -> tuple[list[str], str | None]:
    for i, token in enumerate(tokens):
        for dash in _DASHES:
            if token.startswith(dash):
                first = token[len(dash) :].lstrip("-—– ")
                rest = [first, *tokens[i + 1 :]] if first else tokens[i + 1 :]
                return tokens[:i], " ".join(rest).strip()
    return tokens, None


def parse_silence(tokens: Sequence[str]) -> SilenceRequest:
    """`silence CODE CLUSTER [SUBJECT] [for DURATION] -- REASON` (the verb itself optional)."""
    head, reason = _split_reason(_strip_verb(tokens, "silence"))
    code, cluster = _code_and_cluster(head, SILENCE_USAGE)
    subject: str | None = None
    duration: int | None = None
    rest = head[2:]
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.lower() == "for":
            if duration is not None:
                raise UsageError("give the duration once, for example `for 2h`.")
            if i + 1 >= len(rest):
                raise UsageError("`for` needs a duration, for example `for 2h` or `for 1d`.")
            duration = parse_duration(rest[i + 1])
            i += 2
            continue
        if subject is not None:
            raise UsageError(
                f"unexpected `{_shown(word)}`. Usage: `{SILENCE_USAGE}`; put the reason after `--`."
            )
        subject = _validate_subject(word)
        i += 1
    if not reason:
        raise UsageError(
            "say why after `--`: everyone who meets the silenced finding sees it. For example: "
            f"`{_EXAMPLE}`."
        )
    if len(reason) > MAX_REASON:
        raise UsageError(f"keep the reason under {MAX_REASON} characters (a ticket link helps).")
    return SilenceRequest(code, cluster, subject, duration or DEFAULT_DURATION_S, reason)


def parse_unsilence(tokens: Sequence[str]) -> UnsilenceRequest:
    """`unsilence CODE CLUSTER [SUBJECT]` (the verb itself optional)."""
    items = _strip_verb(tokens, "unsilence")
    code, cluster = _code_and_cluster(items, UNSILENCE_USAGE)
    if len(items) > 3:
        raise UsageError(f"unexpected `{_shown(items[3])}`. Usage: `{UNSILENCE_USAGE}`.")
    subject = _validate_subject(items[2]) if len(items) == 3 else None
    return UnsilenceRequest(code, cluster, subject)


__all__ = [
    "DEFAULT_DURATION_S",
    "MAX_DURATION_S",
    "Silence",
    "SilenceRequest",
    "SilenceStore",
    "UnsilenceRequest",
    "format_duration",
    "parse_duration",
    "parse_silence",
    "parse_unsilence",
]
