"""What starts bakes without anyone clicking: new drops, ballots changes, the nightly timer."""
