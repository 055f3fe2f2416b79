"""Shared fixtures: real components (native extension, mosquitto, pymodbus, ptys)."""
