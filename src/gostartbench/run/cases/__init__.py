"""The benchmark cases gostartbench runs with pytest.

Their fixtures and hooks live in gostartbench.run.plugin."""
