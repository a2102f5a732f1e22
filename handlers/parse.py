"""Slash-command and mention text -> a request: a diagnosis (scenario + cluster + arguments)
or a meta command (help, clusters, history, digest, silence, unsilence, silences).

No I/O: this runs before Slack gets its acknowledgement. Bad input raises `UsageError` with a
message for the user; scenario and argument rules come from `diagnostics.scenarios`.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from bot import messages
from bot.config import Config
from bot.runs import RunRequest
from diagnostics.scenarios import (
    UsageError,
    parse_args,
    resolve_scenario,
    suggest,
    validate_cluster_name,
)

META = ("help", "clusters", "history", "digest", "silence", "unsilence", "silences")
MAX_TEXT = 4000  # Slack's limit for a slash command's text; longer text is not a command
_HELP_WORDS = {"help", "-h", "--help", "?", "usage"}
# Linear: a `<` never starts a scan that runs past the next `<` ("<" * 4000 is 4000 short tries).
_MENTION = re.compile(r"<[@!#][^<>]*+>")
_LINK = re.compile(r"<([^<>|]++)(?:\|([^<>]*+))?>")
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True, slots=True)
class Meta:
    verb: str
    tokens: tuple[str, ...] = ()
    cluster: str | None = None  # history: the (known) cluster


Parsed = RunRequest | Meta


def tokenize(text: str) -> list[str]:
    """Words of a command as Slack delivers it: mentions dropped, links unwrapped, HTML entities
    and smart quotes undone, quoted phrases kept together."""
    text = _MENTION.sub(" ", text or "")
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = html.unescape(text).translate(_QUOTES).replace("\u00a0", " ")
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: fall back to plain words
        return text.split()


def resolve_cluster(word: str, config: Config, choices: Sequence[str]) -> str:
    """A configured cluster alias (case-insensitive when unambiguous), or UsageError with the
    clusters this user may diagnose here and a did-you-mean."""
    validate_cluster_name(word)
    if word in config.clusters:
        return word  # the access check answers a hidden one exactly as an unknown one
    # case-insensitive only over the clusters the user may see: `VAULT` must not come back as
    # the real spelling of a cluster hidden from them
    folded = [c for c in choices if c.lower() == word.lower()]
    if len(folded) == 1:
        return folded[0]
    raise UsageError(messages.unknown_cluster(word, suggest(word, list(choices)), choices))


def check_length(text: str) -> None:
    """UsageError for text longer than a command can be; called before the text is logged,
    redacted or parsed."""
    if len(text) > MAX_TEXT:
        raise UsageError(
            f"that command is {len(text):,} characters long; a command is at most "
            f"{MAX_TEXT:,} (a scenario, a cluster and a few options)."
        )


def parse(text: str, config: Config, choices: Sequence[str]) -> Parsed:
    """`choices`: the clusters the requesting user may diagnose in this channel (for answers)."""
    check_length(text)
    tokens = tokenize(text)
    if not tokens or tokens[0].lower() in _HELP_WORDS:
        return Meta("help")
    first = tokens[0].lower()
    if first in META:
        return _meta(first, tokens[1:], config, choices)
    try:
        scenario = resolve_scenario(tokens[0]).name
    except UsageError:
        # `/aksdiag prod apiserver`: the cluster first. Accept it when the rest is unambiguous.
        if len(tokens) >= 2 and tokens[0] in config.clusters:
            try:
                scenario = resolve_scenario(tokens[1]).name
            except UsageError:
                raise _with_meta(tokens[0]) from None
            tokens = [tokens[1], tokens[0], *tokens[2:]]
        else:
            raise _with_meta(tokens[0]) from None
    if len(tokens) < 2:
        raise UsageError(messages.need_cluster(scenario, choices))
    cluster = resolve_cluster(tokens[1], config, choices)
    return RunRequest(scenario, cluster, parse_args(scenario, tokens[2:]))


def _with_meta(word: str) -> UsageError:
    """The scenario error, with the meta commands among the choices."""
    try:
        resolve_scenario(word)
        text = f"unknown command `{word}`."  # pragma: no cover - it raised above
    except UsageError as exc:
        text = str(exc)
    hint = "" if "Did you mean" in text else suggest(word, list(META))
    others = ", ".join(f"`{m}`" for m in META)
    return UsageError(f"{text}{hint} Other commands: {others}.")


def _meta(verb: str, rest: list[str], config: Config, choices: Sequence[str]) -> Meta:
    if verb == "history":
        if not rest:
            raise UsageError(
                f"which cluster? Usage: `history CLUSTER`. {messages.cluster_choices(choices)}"
            )
        if len(rest) > 1:
            raise UsageError("`history` takes one cluster, for example `history prod`.")
        return Meta(verb, tuple(rest), resolve_cluster(rest[0], config, choices))
    if verb == "digest":  # the name is checked with the user's access (handlers/meta.py)
        if len(rest) != 1:
            raise UsageError("which digest? Usage: `digest NAME`.")
        return Meta(verb, tuple(rest))
    if verb in ("help", "clusters") and rest:
        raise UsageError(f"`{verb}` takes no arguments.")
    if verb == "silences" and len(rest) > 1:
        raise UsageError("`silences` takes at most a cluster, for example `silences prod`.")
    if verb == "silences" and rest:
        return Meta(verb, tuple(rest), resolve_cluster(rest[0], config, choices))
    return Meta(verb, tuple(rest))


def request_tokens(arguments: dict[str, object]) -> list[str]:
    """A report's `arguments` (ScenarioArgs.to_dict) back to command tokens, so a button's
    value goes through the same validation as typed text."""
    tokens: list[str] = []
    if not isinstance(arguments, dict):
        raise UsageError("malformed arguments")
    for key, value in arguments.items():
        if key == "service" and isinstance(value, str):
            tokens.append(value)
        elif key == "from" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            tokens += ["--from", ",".join(value)]
        elif key in ("node", "as", "since") and isinstance(value, str):
            tokens += [f"--{key}", value]
        else:
            raise UsageError(f"unexpected argument {key!r}")
    return tokens
