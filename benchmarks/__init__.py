"""`make bench`: the service under load over loopback, beside a naive reference."""
