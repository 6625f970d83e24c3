"""Side-by-side benchmarks of genesis_trio against Genesis (run ``python -m benchmarks.run``)."""
