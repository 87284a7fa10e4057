"""The LAN endpoint: an app factory over the core services. No Qt here."""
