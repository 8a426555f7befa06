"""A validated spec as a DAG of layers with every shape known: building and checking it, its summary and its picture."""
