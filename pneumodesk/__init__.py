"""PneumoDesk: on-device pneumonia detection on chest X-rays, improved by federated learning."""

__version__ = "0.1.0"
