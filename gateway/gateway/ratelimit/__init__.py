"""Rate limiting: the policy table, the Flask-Limiter setup and the counter store."""
