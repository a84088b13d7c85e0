"""appyard: a self-hosted app server that starts containerized web apps on demand."""

__version__ = "0.1.0"
