"""streamctl: one program feed to every platform, the audience's questions to the people on stage."""

__version__ = "0.1.0"
