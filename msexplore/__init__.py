"""msexplore: explore TVM MetaSchedule search spaces from a notebook or a script."""
