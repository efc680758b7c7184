"""Local fakes of the platforms' APIs, real HTTP servers for the demo and the tests."""
