"""Broadcasts on the platforms: created or looked up through their APIs, taken live, watched, ended."""
