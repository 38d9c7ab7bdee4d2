"""Settings: layers, interpolation, strictness and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcwebhook.config import load_settings
from tcwebhook.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tcwebhook.yaml"
    path.write_text(text)
    return path


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8443
    assert settings.server.paths.order == "/tradecloud/order"
    assert settings.auth.type == "bearer" and not settings.auth.configured
    assert settings.tradecloud.api_base_url == "https://api.accp.tradecloud1.com/v2"
    assert settings.store_url.endswith("events.db")


def test_file_in_working_directory_is_found(tmp_path: Path) -> None:
    write(tmp_path, "server:\n  port: 9001\n")
    assert load_settings(environ={}).server.port == 9001


def test_example_config_is_valid() -> None:
    example = Path(__file__).parent.parent / "config.example.yaml"
    environ = {"TCWEBHOOK_TOKEN": "t", "TCWEBHOOK_PASSWORD": "p", "ESB_TOKEN": "e"}
    settings = load_settings(example, environ=environ)
    assert settings.auth.token == "t"


def test_precedence_flag_over_environment_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 9001\n  host: 127.0.0.2\n")
    environ = {"TCWEBHOOK_SERVER_PORT": "9002"}
    assert load_settings(path, environ=environ).server.port == 9002
    assert load_settings(path, {"server.port": 9003}, environ=environ).server.port == 9003
    assert load_settings(path, environ=environ).server.host == "127.0.0.2"


def test_config_file_from_environment(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("server:\n  port: 9100\n")
    assert load_settings(environ={"TCWEBHOOK_CONFIG": str(other)}).server.port == 9100


def test_interpolation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "auth:\n  token: ${MY_TOKEN}\n"
        "tradecloud:\n  username: ${TC_USER:-integration@example.com}\n",
    )
    settings = load_settings(path, environ={"MY_TOKEN": "s3cret"})
    assert settings.auth.token == "s3cret"
    assert settings.tradecloud.username == "integration@example.com"


def test_missing_variable_names_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 8443\nauth:\n  token: ${MY_TOKEN}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert f"{path}:4" in message and "auth.token" in message and "MY_TOKEN" in message


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 8443\n  prot: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert f"{path}:3" in str(caught.value)
    assert "unknown key 'server.prot'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server:\n  port: eighty\n", "server.port must be a whole number"),
        ("server:\n  port: 70000\n", "between 0 and 65535"),
        ("auth:\n  type: oauth\n", "auth.type must be one of bearer, basic"),
        ("auth:\n  type: basic\n", "needs both auth.username and auth.password"),
        ("server: [1, 2]\n", "must be a mapping"),
        ("server:\n  tls:\n    cert: a.pem\n", "needs both 'cert' and 'key'"),
        ("server:\n  paths:\n    order: tradecloud\n", "must start with '/'"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_wrong_values(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(caught.value)


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: [8443\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert f"{path}:3" in str(caught.value) and "invalid YAML" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "conf.yaml"
    path.write_text("data_dir: ./state\nstore:\n  url: sqlite:///./db/events.db\n")
    settings = load_settings(path, environ={})
    assert settings.data_dir == folder / "state"
    assert settings.store_url == f"sqlite:///{folder}/db/events.db"


def test_settings_never_show_their_secrets_in_a_repr() -> None:
    from tcwebhook.config import (
        AuthSettings,
        InspectorSettings,
        Settings,
        SinkSettings,
        StoreSettings,
        TradecloudSettings,
    )

    settings = Settings(
        auth=AuthSettings(type="bearer", token="tok-SECRET-1", password="pw-SECRET-2"),
        store=StoreSettings(url="postgresql://u:pg-SECRET-3@db/x"),
        tradecloud=TradecloudSettings(username="u", password="api-SECRET-4"),
        inspector=InspectorSettings(username="u", password="ins-SECRET-5"),
        sinks=(
            SinkSettings(
                name="esb",
                type="http",
                url="https://esb.example/x",
                headers={"Authorization": "Bearer hdr-SECRET-6"},
            ),
        ),
    )
    assert "SECRET" not in repr(settings)


def _setting_keys(cls: type, prefix: str = "") -> list[str]:
    """Every leaf key of the schema as written in a file: ``server.tls.cert``, ``sinks[].name``."""
    import dataclasses
    import types
    import typing

    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "source":  # set by the loader, not a key
            continue
        dotted = prefix + f.name
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            if dataclasses.is_dataclass(item):
                keys += _setting_keys(item, dotted + "[].")  # type: ignore[arg-type]
                continue
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys += _setting_keys(hint, dotted + ".")
        else:
            keys.append(dotted)
    return keys


def test_settings_are_documented() -> None:
    """Every key of the schema, nested ones too, is named in docs/configuration.md (as
    `key`, or covered by `section.*`); a new field without a line there fails here."""
    import re

    from tcwebhook.config import Settings

    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    named = set(re.findall(r"`([a-z_\[\]\.\*]+)`", text))

    def documented(key: str) -> bool:
        parts = key.split(".")
        covered = {".".join(parts[:end]) + ".*" for end in range(1, len(parts))}
        return key in named or bool(covered & named)

    keys = _setting_keys(Settings)
    assert len(keys) > 60 and "sinks[].retry.max_delay" in keys  # the walk reaches the leaves
    assert [key for key in keys if not documented(key)] == []
