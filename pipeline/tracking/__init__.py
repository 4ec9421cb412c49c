"""One MLflow run of a training stage (tracker) and the store it goes to (store): the only
modules besides the sweep's lineage that talk to MLflow."""
