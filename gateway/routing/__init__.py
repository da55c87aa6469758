"""Which channel a submit goes to, and in what order the others are tried: the choice
(``choice``), the channel list (``directory``), which channels rest (``cooldowns``), the probes
that bring them back (``probes``) and the in-flight cap (``slots``)."""
