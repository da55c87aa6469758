"""Talking to upstream channels (midjourney-proxy instances) over HTTP."""
