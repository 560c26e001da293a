"""Interactive widgets. Each is thin: its figure comes from a pure function elsewhere in archlab."""

from .base import interactive_figure
from .explain import explain_widget

__all__ = ["explain_widget", "interactive_figure"]
