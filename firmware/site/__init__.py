"""The site and the fleet: the MQTT site bus (own records out, peers' records verified into a mirror), the
site-wide view built on it, fleet health and Prometheus metrics. The gate never waits for any of it."""
