"""Shared by the rendering tests."""

from __future__ import annotations

from promptlogic.rendering import RenderLimits

# Most limit tests need not wait the production second to see the deadline work.
QUICK = RenderLimits(render_seconds=0.25)
