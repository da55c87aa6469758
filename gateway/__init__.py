"""mj-gateway: a metered relay for the midjourney-proxy ``/mj`` API."""

__version__ = "0.1.0"
