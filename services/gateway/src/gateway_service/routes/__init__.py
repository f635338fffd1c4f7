"""The gateway's HTTP routes, one router per area; every router depends on security.authorize."""
