"""Frozen, validated settings.

``load_settings`` merges four layers, each overriding the one before: defaults, the YAML file,
environment variables, command-line flags. ``schema`` holds the dataclasses and their checks,
``yaml`` the bounded reader that remembers each key's file:line, ``loader`` the layers and the
conversion of values to the schema's types.
"""

from __future__ import annotations

from tcwebhook.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    ENV_PREFIX,
    find_config_file,
    flag_name,
    load_settings,
)
from tcwebhook.config.schema import (
    API_BASE_URLS,
    ENTRA_TOKEN_VERSIONS,
    AuthSettings,
    InspectorSettings,
    MetricsSettings,
    Paths,
    ProxySettings,
    ReconcileSettings,
    RetrySettings,
    ServerLimits,
    ServerSettings,
    Settings,
    SinkSettings,
    StoreSettings,
    TlsFiles,
    TradecloudSettings,
    bounds,
    default_data_dir,
    parse_duration,
    split_listen,
    web_url,
)
from tcwebhook.config.yaml import MAX_YAML_DEPTH, MAX_YAML_NODES, interpolate

__all__ = [
    "API_BASE_URLS",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "ENTRA_TOKEN_VERSIONS",
    "ENV_PREFIX",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "AuthSettings",
    "InspectorSettings",
    "MetricsSettings",
    "Paths",
    "ProxySettings",
    "ReconcileSettings",
    "RetrySettings",
    "ServerLimits",
    "ServerSettings",
    "Settings",
    "SinkSettings",
    "StoreSettings",
    "TlsFiles",
    "TradecloudSettings",
    "bounds",
    "default_data_dir",
    "find_config_file",
    "flag_name",
    "interpolate",
    "load_settings",
    "parse_duration",
    "split_listen",
    "web_url",
]
