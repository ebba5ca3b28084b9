"""Write-path benchmarks: ``make bench`` (``python -m bench``) prints each project figure beside a raw
baseline measured on the same machine in the same run, and writes the results as JSON to bench/results/."""
