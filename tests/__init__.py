"""qabot's tests: ``unit/`` (one part, in-process, fast) and ``e2e/`` (front ends, protocol fakes,
faults, load and hostile input). ``fake_discord`` and ``llm_servers`` are the protocol fakes."""
