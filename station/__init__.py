"""Provisioning station for Azure IoT Hub DPS."""

__version__ = "0.1.0"
