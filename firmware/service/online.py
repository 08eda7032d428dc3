"""Each configured channel asked once, read only, as production will ask it (`config check --online`, `doctor`).

REST: a token (client id, key and certificate). SOAP: a signed getPresenceRegistration (the certificate registered
with ONSS, the signature, the clock). A SOAP-only gate is never asked for a REST token it has no use for."""

from __future__ import annotations

from dataclasses import dataclass

from sitegate.clock import Clock
from sitegate.config import Config
from sitegate.service.channels import single
from sitegate.service.client import DeliveryFailure


@dataclass(frozen=True)
class ChannelCheck:
    channel: str  # rest or soap
    ok: bool
    detail: str  # what the answer proved, or the problem
    fix: str = ""
    setting: str = ""  # the configuration key a failure points to

    @property
    def label(self) -> str:
        return f"{self.channel.upper()} channel"


def check_channels(config: Config, clock: Clock) -> list[ChannelCheck]:
    """The channel, then its fallback when one is set."""
    return [check_channel(name, config, clock) for name in (config.service.channel, config.service.fallback) if name]


def check_channel(name: str, config: Config, clock: Clock) -> ChannelCheck:
    try:
        client = single(name, config, clock)
        if name == "soap":
            return ChannelCheck(name, True, client.check_online())
        client.token()
        return ChannelCheck(name, True, f"token obtained from {config.service.token_url}")
    except DeliveryFailure as failure:
        setting = "service.soap_url" if name == "soap" else "service.token_url"
        return ChannelCheck(name, False, failure.problem, failure.fix, setting)
