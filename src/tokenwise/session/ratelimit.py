"""A token bucket for client messages: a steady rate with bursts, and how long to wait when empty."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self._tokens, self._at = float(burst), now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when allowed, otherwise the seconds until one is available."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
