"""Who may use the page: foremen signed in with their PIN, in sessions kept in this process's memory.

- PINs are checked against the scrypt hashes of the configuration (pins.py); each foreman has a name, and that
  name goes into every signed record the session causes.
- Wrong PINs are rate-limited per client address (`web.max_failures` within `web.lockout_s`, then it waits) and
  for the whole page (four times as many from everywhere: a phone per guess does not help).
- A session is a random token in a cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) that lasts at most
  `web.session_hours`; a restart of the page signs everybody out (nothing to steal on disk).
- Every form carries the session's CSRF token, and a POST whose Origin (or Referer) is not the page itself is
  refused; the sign-in form has its own token in a cookie (double submit), so no other site can sign a phone in.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sitegate import pins
from sitegate.config import ForemanConfig, WebConfig

WHOLE_PAGE = 4  # the page-wide limit is this many times the per-address one


@dataclass
class Session:
    token: str
    foreman: str
    csrf: str
    expires: datetime
    language: str


@dataclass
class Attempts:
    """Failed sign-ins per client address and overall, within the lockout window."""

    per_address: dict[str, deque[datetime]] = field(default_factory=dict)
    overall: deque[datetime] = field(default_factory=deque)


class Gatekeeper:
    """Sign-in, sessions and the rate limit; safe to use from the server's worker threads."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.attempts = Attempts()
        self.lock = threading.Lock()

    def _recent(self, times: deque[datetime], now: datetime) -> int:
        horizon = now - timedelta(seconds=self.config.lockout_s)
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)

    def wait_s(self, address: str, now: datetime) -> float:
        """Seconds this address must wait before it may try a PIN again (0: it may try now)."""
        with self.lock:
            mine = self.attempts.per_address.get(address, deque())
            blocked = [
                times[0]
                for times, limit in (
                    (mine, self.config.max_failures),
                    (self.attempts.overall, self.config.max_failures * WHOLE_PAGE),
                )
                if self._recent(times, now) >= limit
            ]
        if not blocked:
            return 0.0
        return max((first + timedelta(seconds=self.config.lockout_s) - now).total_seconds() for first in blocked)

    def sign_in(self, pin: str, address: str, language: str, now: datetime) -> Session | None:
        """The session of the foreman whose PIN this is; None (and one more failure counted) otherwise."""
        foreman = self._foreman(pin)
        with self.lock:
            if foreman is None:
                self.attempts.per_address.setdefault(address, deque()).append(now)
                self.attempts.overall.append(now)
                return None
            self.attempts.per_address.pop(address, None)
            self._forget_expired(now)
            session = Session(
                secrets.token_urlsafe(32),
                foreman.name,
                secrets.token_urlsafe(32),
                now + timedelta(hours=self.config.session_hours),
                language,
            )
            self.sessions[session.token] = session
            return session

    def _foreman(self, pin: str) -> ForemanConfig | None:
        """Every hash is tried (the time taken does not tell which foreman, or whether any, matched)."""
        found = None
        for foreman in self.config.foremen:
            if pins.verify(pin, foreman.pin_hash) and found is None:
                found = foreman
        return found

    def _forget_expired(self, now: datetime) -> None:
        for token in [t for t, s in self.sessions.items() if s.expires <= now]:
            del self.sessions[token]

    def session(self, token: str | None, now: datetime) -> Session | None:
        if not token:
            return None
        with self.lock:
            session = self.sessions.get(token)
            if session is None or session.expires <= now:
                self.sessions.pop(token, None)
                return None
            return session

    def sign_out(self, token: str | None) -> None:
        with self.lock:
            self.sessions.pop(token or "", None)


def same(expected: str | None, given: str | None) -> bool:
    """A CSRF token compared in constant time; a missing one never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def same_origin(origin: str | None, referer: str | None, own: str) -> bool:
    """A form post comes from the page itself: its Origin, or failing that its Referer, is the page's own origin.
    A browser sends one of them with every form post; a request with neither is refused too."""
    if origin:
        return origin == own
    if referer:
        return referer == own or referer.startswith(own + "/")
    return False
