"""Load benchmark of the students service against a bare Flask baseline."""
