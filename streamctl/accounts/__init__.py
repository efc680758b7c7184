"""Platform accounts: Google OAuth credentials (device flow, refresh) and Facebook Page tokens."""
