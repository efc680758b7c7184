"""Audience sources: live comments and viewer counts from every platform."""
