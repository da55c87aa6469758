"""Which channel a submit goes to, and in what order the others are tried."""
