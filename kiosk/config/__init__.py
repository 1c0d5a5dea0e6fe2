"""The kiosk's one TOML configuration: typed, validated once at start-up, every problem at once.

* :mod:`kiosk.config.schema`: the sections and keys (types, ranges, help text): the single source;
* :mod:`kiosk.config.loading`: reading a file against the schema, each problem naming the key and line;
* :mod:`kiosk.config.editor`: the one TOML writer (values, files, template edits, the example config);
* :mod:`kiosk.config.preflight`: what the config points at (files, keys, devices, the broker URL):
  what both ``kiosk config check`` and ``kiosk run`` check before serving.

This package's face is the schema, the loading and the writer below; preflight, which
touches files and devices, is imported on its own.
"""

from kiosk.config.editor import dump_toml, edit_toml, example_toml, toml_value
from kiosk.config.loading import collect, find_line, load, parse, read_text
from kiosk.config.schema import (CONFIG_MAX_BYTES, ERROR, SECTIONS, VISIT_LOG_FIELDS, WARNING, AudioConfig,
                                 CameraConfig, Config, ConfigError, DeviceConfig, LedgerConfig, MqttConfig,
                                 PolicyConfig, Problem, ScannerConfig, ScreenConfig, SignalsConfig, TracingConfig,
                                 TrustConfig, VenueConfig, describe, field_meta, path_keys, required_keys)

__all__ = ["AudioConfig", "CONFIG_MAX_BYTES", "CameraConfig", "Config", "ConfigError", "DeviceConfig", "ERROR",
           "LedgerConfig", "MqttConfig", "PolicyConfig", "Problem", "SECTIONS", "ScannerConfig", "ScreenConfig",
           "SignalsConfig", "TracingConfig", "TrustConfig", "VISIT_LOG_FIELDS", "VenueConfig", "WARNING", "collect",
           "describe", "dump_toml", "edit_toml", "example_toml", "field_meta", "find_line", "load", "parse",
           "path_keys", "read_text", "required_keys", "toml_value"]
