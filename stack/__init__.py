"""The native launcher: installs, configures, starts and stops a whole stack (stdlib only)."""
