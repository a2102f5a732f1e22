"""Slack user-group memberships, cached and refreshed in the background, so an authorization
decision never waits on the network before Slack gets its acknowledgement.

Only the groups that the configuration names (`allow.usergroups`, by id `S0…` or by handle)
are read. A group is known under both its id and its handle.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Config

log = logging.getLogger(__name__)


class UsergroupCache:
    def __init__(self, client: WebClient, config: Config, refresh_s: float = 300.0) -> None:
        self._client = client
        self._wanted = {
            g
            for c in config.clusters.values()
            if c.allow and c.allow.usergroups
            for g in c.allow.usergroups
        }
        self._refresh_s = refresh_s
        self._members: dict[str, frozenset[str]] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._refresh_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if not self._wanted:
            self._ready.set()  # nothing to know

    @property
    def needed(self) -> bool:
        return bool(self._wanted)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def groups_of(self, user: str) -> frozenset[str] | None:
        """The ids and handles of the configured groups `user` is in; None before the first
        refresh finished."""
        if not self.ready:
            return None
        return self._members.get(user, frozenset())

    def refresh(self) -> None:
        """Read the configured groups' members now (one usergroups.list, one
        usergroups.users.list per group)."""
        if not self._wanted:
            return
        with self._refresh_lock:
            groups = self._client.usergroups_list(include_disabled=False).get("usergroups") or []
            members: dict[str, set[str]] = {}
            for group in groups:
                names = {group.get("id", ""), group.get("handle", "")} - {""}
                if not names & self._wanted:
                    continue
                users = self._client.usergroups_users_list(usergroup=group["id"]).get("users") or []
                for user in users:
                    members.setdefault(user, set()).update(names)
            self._members = {u: frozenset(g) for u, g in members.items()}
            self._ready.set()
            log.info("user groups refreshed: %d groups, %d members", len(groups), len(members))

    def wait_ready(self, timeout_s: float) -> bool:
        """Refresh now if nothing is known yet; True once memberships are known (at once when
        no cluster's `allow` block names a user group: there is nothing to wait for)."""
        if not self._wanted:
            return True
        if not self.ready:
            try:
                self.refresh()
            except (SlackApiError, OSError) as exc:
                log.warning("user groups could not be read: %s", exc)
        return self._ready.wait(timeout_s)

    def start(self) -> None:
        if not self._wanted or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="aksdiag-usergroups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                wait = self._refresh_s
            except (SlackApiError, OSError) as exc:
                log.warning("user groups could not be read, retrying in 30s: %s", exc)
                wait = min(30.0, self._refresh_s)
            self._stop.wait(wait)
