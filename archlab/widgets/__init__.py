"""Interactive widgets. Each is thin: its figure comes from a pure function elsewhere in archlab."""

from .architecture import call_chain_widget
from .base import interactive_figure
from .bloom import bloom_widget
from .caching import hit_curve_widget
from .explain import explain_widget
from .hashing import ring_widget
from .messaging import fanout_widget
from .ratelimit import ratelimit_widget
from .realtime import mesh_widget
from .serialization import payload_widget
from .storage import tiering_widget
from .timeline import timeline_widget
from .workloads import latency_widget

__all__ = ["bloom_widget", "call_chain_widget", "explain_widget", "fanout_widget", "hit_curve_widget",
           "interactive_figure", "latency_widget", "mesh_widget", "payload_widget", "ratelimit_widget", "ring_widget",
           "tiering_widget", "timeline_widget"]
