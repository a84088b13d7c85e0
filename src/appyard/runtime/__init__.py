"""Container engines behind one interface; podman and docker are driven through their CLIs."""

from appyard.runtime.engine import (
    ContainerInfo,
    Engine,
    EngineError,
    detect_engine,
)

__all__ = ["ContainerInfo", "Engine", "EngineError", "detect_engine"]
