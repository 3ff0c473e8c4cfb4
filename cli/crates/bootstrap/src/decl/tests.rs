// Unit tests: written next.
