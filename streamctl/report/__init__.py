"""The post-event viewer report."""
