"""One planned sweep, Hydra-free: its settings, the plan of searches, the runner that drives the
rounds through a launcher, the sweep directory's files, resume state, the MLflow run tree
(lineage), the results and reports, and the analysis after each search."""
