"""Relaxometry: EPG engine, T2 and T1 models (numpy/scipy only; never torch)."""
