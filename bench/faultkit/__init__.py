"""The pieces of the reliability suite (bench/faults.py): its own servers, the load, the fake PAC, the counts."""
