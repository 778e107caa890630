"""Sample exports for the warehouse: realistic, deterministic and, on request, dirty."""

from .dirty import DirtyCase
from .generate import GenerateSummary, generate

__all__ = ["DirtyCase", "GenerateSummary", "generate"]
