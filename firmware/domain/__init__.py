"""The gate's domain: identifiers, the roster, a registration, the gate's decisions, who is on site."""
