"""Configuration: typed settings and the model/voice registry. No heavy imports."""

from chorus.configs.registry import Model, Registry, RegistryError, Voice, load_registry
from chorus.configs.settings import Settings, get_settings

__all__ = ["Model", "Registry", "RegistryError", "Settings", "Voice", "get_settings", "load_registry"]
