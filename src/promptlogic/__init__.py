"""promptlogic: business logic as data, served over a REST API."""

__version__ = "0.1.0"
