"""User-facing configs (pydantic, YAML in). Each concept has its own module here."""

from accelsim.config._base import Strict, format_validation_error, load_config, read_yaml, validate_config

__all__ = ["Strict", "format_validation_error", "load_config", "read_yaml", "validate_config"]
