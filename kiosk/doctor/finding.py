"""What every check of ``kiosk doctor`` shares: its answer (:class:`Finding`) and what it is given (:class:`Context`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    """The answer of one check; ``advice`` says what to do (empty on pass)."""

    check: str
    status: str  # pass | warn | fail
    message: str
    advice: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Context:
    """What the checks share: the validated config and the options of the run."""

    config: object  # kiosk.config.Config
    config_path: Path
    broker_timeout: float = 5.0
    camera_timeout: float = 5.0


Check = Callable[[Context], Finding]
