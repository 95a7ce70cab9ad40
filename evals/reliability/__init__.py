"""The reliability battery: bad inputs, backend faults, crashes, load and soak against a real server."""
