"""Workload tags for tuning exceptions that name tags (``tags: {team: media}``).

Tags are read only when an alert meets an exception with a ``tags`` condition, and cached
per workload for a few minutes. They are read through the workload account's
``ramparts-responder`` role (the Member stack creates it; deploy the Member stack in the
core account too for its own workloads), which may read them (:func:`functions.aws_tags.
read_tags`). A lookup that fails counts as "no tags": an exception that needs tags then does
not apply, so the alert is published rather than hidden.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from collectors.workload import Workload
from functions.aws_tags import read_tags

logger = Logger(child=True)

DEFAULT_TTL_S = 300
SESSION_TTL_S = 45 * 60  # assumed-role sessions last an hour


class TagLookup:
    """A ``collectors.rules.engine.TagLookup``: the tags of a workload, cached."""

    def __init__(
        self,
        *,
        own_account: str | None,
        role_name: str = "ramparts-responder",
        session: Any = None,
        ttl_s: int = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        partition: str = "aws",
    ) -> None:
        self.own_account = own_account
        self.role_name = role_name
        self.session = session if session is not None else boto3.session.Session()
        self.ttl_s = ttl_s
        self.clock = clock
        self.partition = partition
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._sessions: dict[str, tuple[float, Any]] = {}
        self.errors = 0

    def __call__(self, wl: Workload) -> Mapping[str, str]:
        now = self.clock()
        hit = self._cache.get(wl.key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        try:
            tags = self._read(wl)
        except Exception as exc:  # fail towards publishing: no tags, the exception does not apply
            self.errors += 1
            logger.warning(
                "workload tags not readable; tag exceptions do not apply to it",
                extra={"workload": wl.key, "error": f"{type(exc).__name__}: {exc}"},
            )
            tags = {}
        self._cache[wl.key] = (now, tags)
        return tags

    def _session(self, wl: Workload) -> Any:
        """A session of the workload account's responder role (cached for its lifetime)."""
        account = wl.account or self.own_account
        if account is None:
            raise ValueError("the workload's account is unknown")
        now = self.clock()
        found = self._sessions.get(account)
        if found is None or now - found[0] > SESSION_TTL_S:
            sts = self.session.client("sts")
            role = f"arn:{self.partition}:iam::{account}:role/{self.role_name}"
            creds = sts.assume_role(RoleArn=role, RoleSessionName="ramparts-ingest-tags")[
                "Credentials"
            ]
            sess = boto3.session.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.session.region_name,
            )
            found = (now, sess)
            self._sessions[account] = found
        return found[1]

    def _read(self, wl: Workload) -> dict[str, str]:
        if wl.type not in ("lambda", "ec2", "ecs-task"):
            return {}  # pods, containers, hosts: no AWS tags
        return read_tags(self._session(wl), wl.type, wl.uid, wl.region)
