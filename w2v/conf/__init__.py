"""Hydra config of every entry point; a package so that Hydra finds it in an installed wheel (pkg://w2v.conf)."""
