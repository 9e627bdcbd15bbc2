"""Which base URLs each judge key may be sent to (``judge_key_urls``).

An evaluator names the server's environment variable holding its judge's key, and any
full key of any project can define an evaluator with any URL: without a binding, it
could name the operator's key and a URL of its own, and receive the key. The setting
binds each key variable to the base URL(s) it may go to, e.g.
``THREADLINE_JUDGE_OPENAI_KEY=https://api.openai.com/v1``: an evaluator naming a key
for another URL is refused when it is defined, and checked again before each call (the
setting may have changed since), so the key is never sent elsewhere.

A bound URL allows its own scheme, host and port, and its path and the paths under it
(``https://host/v1`` allows ``https://host/v1`` and ``https://host/v1/deployments/x``,
not ``https://host/v10`` nor ``https://host``, nor a path climbing out of it with
percent-encoded dot segments and slashes, ``https://host/v1/..%2fx``). Unset, every
key variable may go to any URL, as before the setting existed; the server warns at
start that it is unset.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from threadline.server.errors import ConfigurationError
from threadline.server.settings import SETTINGS, Settings

log = logging.getLogger("threadline.evaluation")

KEY_PREFIX = "THREADLINE_JUDGE_"
_VARIABLE = re.compile(r"^THREADLINE_JUDGE_[A-Za-z0-9_]+$")
SETTING_ENV = "THREADLINE_JUDGE_KEY_URLS"


@dataclass(frozen=True)
class _Place:
    scheme: str
    host: str
    port: int | None
    path: str  # without its trailing slash

    @classmethod
    def of(cls, url: str) -> _Place:
        parsed = httpx.URL(url)
        port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
        return cls(parsed.scheme, parsed.host.lower(), port, parsed.path.rstrip("/"))

    def allows(self, other: _Place) -> bool:
        same_server = (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)
        under = other.path == self.path or other.path.startswith(self.path + "/")
        return same_server and under and not _climbs(other.path)


@dataclass(frozen=True)
class KeyUrls:
    """Each key variable's base URLs; ``None``: no binding configured (any URL)."""

    bound: Mapping[str, tuple[str, ...]] | None = None

    @classmethod
    def of(cls, settings: Settings) -> KeyUrls:
        return cls.parse(settings.judge_key_urls)

    @classmethod
    def parse(cls, text: str) -> KeyUrls:
        """``NAME=URL[,URL...]`` entries separated by spaces, new lines or ``;``."""
        if not text.strip():
            return cls(None)
        bound: dict[str, tuple[str, ...]] = {}
        for entry in re.split(r"[\s;]+", text.strip()):
            name, sep, urls = entry.partition("=")
            if not sep or not _VARIABLE.match(name) or _is_setting(name):
                raise ConfigurationError(
                    f"--judge-key-urls / {SETTING_ENV}: {entry!r} is not"
                    f" {KEY_PREFIX}NAME=URL[,URL...]"
                )
            places = tuple(u for u in urls.split(",") if u)
            for url in places:
                try:
                    place = _Place.of(url)
                except (httpx.InvalidURL, TypeError):
                    place = None
                if place is None or place.scheme not in ("http", "https") or not place.host:
                    raise ConfigurationError(
                        f"--judge-key-urls / {SETTING_ENV}: {url!r} (for {name}) is not an"
                        " http or https URL"
                    )
            if not places:
                raise ConfigurationError(f"--judge-key-urls / {SETTING_ENV}: {name} has no URL")
            bound[name] = bound.get(name, ()) + places
        return cls(bound)

    def refusal(self, variable: str, base_url: str) -> str | None:
        """Why ``variable``'s key may not be sent to ``base_url``; None if it may."""
        if self.bound is None:
            return None
        urls = self.bound.get(variable)
        if urls is None:
            return (
                f"the judge's key variable {variable} is bound to no base URL"
                f" ({SETTING_ENV} binds each key variable to the URLs it may be sent to)"
            )
        target = _Place.of(base_url)
        if any(_Place.of(url).allows(target) for url in urls):
            return None
        return (
            f"the judge's key variable {variable} may be sent only to {', '.join(urls)},"
            f" not to {base_url}"
        )

    def warn_if_unbound(self, environ: Mapping[str, str] | None = None) -> None:
        """Say at start that judge keys set in the environment can go to any URL."""
        environ = os.environ if environ is None else environ
        if self.bound is not None:
            return
        keys = sorted(name for name in environ if _VARIABLE.match(name) and not _is_setting(name))
        if keys:
            log.warning(
                "%s is not set: the judge keys %s can be sent to any URL an evaluator"
                " names (any full key of any project can define one); bind each to its"
                " judge's base URL, e.g. %s=%s=https://api.openai.com/v1",
                SETTING_ENV,
                ", ".join(keys),
                SETTING_ENV,
                keys[0],
            )


def _climbs(path: str) -> bool:
    """Whether a (percent-decoded) path has a ``.`` or ``..`` segment or a backslash:
    the literal ones are removed before (by the URL's parsing), but ``/v1/..%2fx`` and
    ``/v1/%2e%2e%5cx`` are sent as they are, and a server that decodes them first
    reads ``/x``, out of the bound path."""
    return "\\" in path or any(segment in (".", "..") for segment in path.split("/"))


def _is_setting(name: str) -> bool:
    """``THREADLINE_JUDGE_TIMEOUT_SECONDS`` and its kind are settings, not keys."""
    return any(s.env == name for s in SETTINGS)
