"""Service link patterns, matched with RE2: time linear in the link's length whatever the
pattern, so an operator's `^https://(a+)+$` cannot freeze the API process the way a
backtracking engine does.

RE2 refuses what it cannot match in linear time (backreferences, lookarounds): such a
pattern is refused when the operator sets it, and one already stored (set before this
rule) matches no link and is logged, rather than failing every `add` of its service.
"""

from __future__ import annotations

import functools
import logging
from typing import Protocol, cast

import re2

log = logging.getLogger(__name__)


class Matcher(Protocol):
    def search(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """The pattern cannot be compiled by RE2; the message says why."""


def _options() -> object:
    options = re2.Options()
    options.log_errors = False  # errors come back as exceptions, not stderr lines
    return cast(object, options)


OPTIONS = _options()


def compile_pattern(pattern: str) -> Matcher:
    try:
        compiled = re2.compile(pattern, options=OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(f"link_pattern is not a valid RE2 expression: {reason}") from None
    return cast(Matcher, compiled)


@functools.lru_cache(maxsize=1024)
def _cached(pattern: str) -> Matcher | None:
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        # Logged once per process and pattern (the answer is cached).
        log.error(
            "service link pattern unusable; no link matches it",
            extra={"pattern": pattern, "reason": str(exc)},
        )
        return None


def link_matches(pattern: str, link: str) -> bool:
    matcher = _cached(pattern)
    return matcher is not None and matcher.search(link) is not None
