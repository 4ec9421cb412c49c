"""This app's Hydra edge: the entry point's helpers (cli), the config schema and its resolvers,
the check-before-run callback, and the export hook that logs the best trial's model."""
