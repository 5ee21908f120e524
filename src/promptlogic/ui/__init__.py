"""The admin web UI under `/ui`: server-rendered pages over the same services as the API."""

from promptlogic.ui.app import create_ui

__all__ = ["create_ui"]
