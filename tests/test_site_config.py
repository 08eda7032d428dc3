"""The [bus] and [metrics] sections: off unless configured, every problem named with its fix."""

from __future__ import annotations

import tomllib

import pytest
from conftest import CONFIG_TEXT

from sitegate import config as configuration
from sitegate.errors import ConfigError

KEY = "ab" * 32


def parse(extra: str) -> configuration.Config:
    return configuration.parse(tomllib.loads(CONFIG_TEXT + extra))


def test_the_bus_is_off_unless_a_host_is_set():
    config = parse("")
    assert not config.bus.enabled and config.bus.peer_keys == {} and config.metrics.textfile is None
    example = configuration.example_text()
    assert "[bus]" in example and "# host = " in example and "# peers = " in example


def test_a_configured_bus_with_pinned_peers():
    peers = f'peers = [{{id = "gate-02", public_key = "{KEY}"}}]'
    config = parse(f'\n[bus]\nhost = "192.0.2.10"\nsite = "site-1"\n{peers}\n')
    assert config.bus.enabled and config.bus.peers == (("gate-02", KEY),) and config.bus.port == 8883
    assert config.mirror_path.name == "sitegate-site.db" and config.mirror_path != config.database_path


@pytest.mark.parametrize(
    ("section", "path", "words"),
    [
        ('site = "a/b"', "bus.site", "letters, digits"),
        ('peers = [{id = "gate-02", public_key = "12"}]', "bus.peers[0].public_key", "64 hexadecimal"),
        (f'peers = [{{id = "gate-02", public_key = "{"0" * 64}"}}]', "bus.peers[0].public_key", "placeholder"),
        (f'peers = [{{id = "gate-01", public_key = "{KEY}"}}]', "bus.peers", "itself"),
        (f'peers = [{{id = "g2", public_key = "{KEY}"}}, {{id = "g2", public_key = "{KEY}"}}]', "bus.peers", "twice"),
    ],
)
def test_bus_mistakes_are_named_with_their_fix(section, path, words):
    with pytest.raises(ConfigError) as raised:
        parse(f'\n[bus]\nhost = "192.0.2.10"\n{section}\n')
    assert any(p.path == path and words in p.message for p in raised.value.problems), raised.value.problems


def test_a_bus_without_peers_is_a_warning():
    config = parse('\n[bus]\nhost = "192.0.2.10"\n')
    assert [p.path for p in config.warnings if p.severity == "warning" and "mirrors nobody" in p.message] == [
        "bus.peers"
    ]
