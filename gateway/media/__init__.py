"""The media store: results of SUCCESS tasks kept by the gateway (``stores``), copied from the
upstream once in the background (``copier``), checked and thumbnailed (``files``)."""
