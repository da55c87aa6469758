"""API keys: how a request names its caller, and who that caller is."""
