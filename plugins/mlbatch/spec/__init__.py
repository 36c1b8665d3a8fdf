"""The batch spec: typed models of a dags/specs/*.yaml file, its field checks and units, the loader and lint."""
