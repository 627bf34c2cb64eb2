"""Code shared by training, serving and operations: settings, paths, a local Redis."""
