"""The run stage: the plan, the schedule, the pytest glue and plugin, and the verdict."""
