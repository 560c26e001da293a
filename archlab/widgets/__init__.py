"""Interactive widgets. Each is thin: its figure comes from a pure function elsewhere in archlab."""

from .base import interactive_figure
from .explain import explain_widget
from .workloads import latency_widget

__all__ = ["explain_widget", "interactive_figure", "latency_widget"]
