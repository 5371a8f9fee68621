"""Fast tests of one part at a time, in-process."""
