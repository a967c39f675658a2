"""Slowing down password guessing: failed sign-ins are counted per account and per address.

After ``max_per_account`` failures for one user name (whether or not it exists) within
``window`` seconds, that name is locked until the oldest of those failures leaves the window;
after ``max_per_address`` failures from one address, that address is. While locked, passwords
are not even checked, so guesses made then cost the attacker time and learn nothing. The counts
live in the database, so every web process (and every web machine) sees the same ones. A
successful sign-in clears its account's failures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from inkwell.models import SignInFailure, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottlePolicy:
    max_per_account: int
    max_per_address: int
    window_seconds: float


def account_key(username: str) -> str:
    """The name failures are counted under: how it was typed, trimmed and case-folded."""
    return username.strip().casefold()[:64]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)  # SQLite drops the zone


def _locked_for(session: Session, column, value: str, limit: int, window: timedelta, now: datetime) -> float:
    recent = session.scalars(
        select(SignInFailure.at)
        .where(column == value, SignInFailure.at > now - window)
        .order_by(SignInFailure.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return 0.0
    return max(0.0, (_aware(recent[-1]) + window - now).total_seconds())


def locked_for(session: Session, username: str, address: str, policy: ThrottlePolicy) -> float:
    """Seconds until this account and this address may try again (0: they may now)."""
    now, window = utcnow(), timedelta(seconds=policy.window_seconds)
    return max(
        _locked_for(session, SignInFailure.username, account_key(username), policy.max_per_account, window, now),
        _locked_for(session, SignInFailure.address, address[:64], policy.max_per_address, window, now),
    )


def record_failure(session: Session, username: str, address: str, policy: ThrottlePolicy) -> None:
    """Count a failed sign-in (and forget failures older than the window)."""
    now = utcnow()
    session.execute(delete(SignInFailure).where(SignInFailure.at < now - timedelta(seconds=policy.window_seconds)))
    session.add(SignInFailure(username=account_key(username), address=address[:64], at=now))
    log.warning("failed sign-in for %r from %s", account_key(username), address)


def clear_failures(session: Session, username: str) -> None:
    """A successful sign-in: the account's earlier failures no longer count against it."""
    session.execute(delete(SignInFailure).where(SignInFailure.username == account_key(username)))
